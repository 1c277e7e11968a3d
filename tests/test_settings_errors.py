"""A bad setting is one line naming it and what it accepts, exit code 2: never a pydantic traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from talentbot import ConfigError, TalentBot


@pytest.mark.slow  # a fresh interpreter per case
@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"TALENTBOT_K": "0"}, ["ask", "人才公寓有哪些支持方式？"], "TALENTBOT_K=0"),
        ({"TALENTBOT_FUSION": "bogus"}, ["ask", "人才公寓有哪些支持方式？"], "'rrf', 'lexical' or 'dense'"),
        ({}, ["serve", "--port", "99999"], "TALENTBOT_PORT=99999"),
    ],
)
def test_bad_setting_is_one_line_and_exit_code_2(tmp_path, env, args, named):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from talentbot.cli import main; main()",
            *args,
            "--store",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: invalid setting"), done.stderr
    assert named in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_talentbot_overrides_are_validated(tmp_path):
    bot = TalentBot(store=str(tmp_path / "s"), k=3)
    assert isinstance(bot.settings.store, Path)
    assert bot.settings.k == 3
    with pytest.raises(ConfigError, match="TALENTBOT_K=0"):
        TalentBot(k=0)
    with pytest.raises(ConfigError, match="TALENTBOT_FUSION"):
        TalentBot(bot.settings, fusion="bogus")
