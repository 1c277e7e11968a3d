"""The browser chat's stylesheet (handed to Gradio by :func:`talentbot.web.create_app`).

Element ids (``tb-…``) are set in :mod:`talentbot.web_app`. On a narrow screen the two columns of the chat
tab are dissolved into one, ordered so that the Sources panel comes right after the chat.
"""

from __future__ import annotations

MOBILE_MAX_PX = 767  # at this width and below, the chat tab is one column

CSS = f"""
#tb-sources {{max-height:640px; overflow-y:auto !important; padding-right:4px}}  /* Gradio's block: visible */
.tb-turn {{color:#57606a; font-size:0.85em; margin:14px 0 4px; padding-bottom:2px; border-bottom:1px solid #eaeef2;
          white-space:nowrap; overflow:hidden; text-overflow:ellipsis}}
.tb-turn:first-child {{margin-top:0}}
.tb-cite {{border:1px solid #d0d7de; border-radius:8px; padding:8px 10px; margin:8px 0; background:#fff;
          scroll-margin-top:8px}}
.tb-cite:target {{border-color:#d4a017; box-shadow:0 0 0 3px #f5e6a8}}
.tb-head {{font-weight:600}} .tb-meta {{color:#57606a; font-size:0.85em; margin:2px 0 6px}}
.tb-text {{white-space:pre-wrap; line-height:1.6}} .tb-text mark {{background:#fff3a3; padding:0 1px}}
.tb-text mark strong {{font-weight:700; text-decoration:underline; text-decoration-color:#d4a017}}
.tb-none {{border:1px dashed #d4a017; background:#fff8e1; border-radius:8px; padding:10px; color:#6e5200}}
.tb-warn {{color:#9a6700; font-size:0.9em}}
#tb-filter-row {{align-items:center; gap:8px}}
.tb-filters {{border:1px solid #d4a017; background:#fff8e1; border-radius:8px; padding:6px 10px; color:#6e5200;
             font-size:0.9em}}
.tb-filters .tb-meta {{color:#8a6d1a; margin:0}}
#tb-reader .tb-article {{max-height:70vh; overflow-y:auto; border:1px solid #d0d7de; border-radius:8px;
                         padding:10px 14px}}
#tb-reader .tb-head {{font-size:1.15em}} #tb-reader p {{margin:0 0 0.8em}}
.tb-chapter {{font-weight:600; margin:1em 0 0.4em; color:#24292f}}
@media (max-width: {MOBILE_MAX_PX}px) {{
  #tb-main {{flex-direction:column; flex-wrap:nowrap}}
  #tb-left, #tb-right {{display:contents}}
  #tb-main > #tb-left > *, #tb-main > #tb-right > * {{order:3; width:100%; min-width:0}}
  #tb-main > #tb-left > #tb-chat {{order:1}}
  #tb-main > #tb-right > * {{order:2}}
  #tb-chat {{height:60vh !important}}
  #tb-sources {{max-height:45vh}}
}}
"""
