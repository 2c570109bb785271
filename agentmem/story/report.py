"""The HTML report of a generated story: one file, with the contact sheet embedded.

Per-shot videos and reference keyframes are linked by paths relative to the
output folder, so the folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from agentmem.timeparse import format_time

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;
vertical-align:top}th{background:#f0f0f0}.shot{border-top:2px solid #888;padding-top:1em;margin-top:1.5em}
.media{display:flex;gap:1em;align-items:flex-start;flex-wrap:wrap}.ref img{height:64px;margin-right:4px}
code{background:#f4f4f4;padding:1px 3px}.small{color:#666;font-size:12px}
"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _img_data(path: str) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _video(rel: str | None) -> str:
    if not rel:
        return ""
    if rel.endswith(".mp4"):
        return f'<video src="{_e(rel)}" controls loop muted autoplay width="320"></video>'
    return f'<img src="{_e(rel)}" width="320" alt="shot video">'


def _rel(path: str | None, out: Path) -> str | None:
    if not path:
        return None
    try:
        return os.path.relpath(path, out)
    except ValueError:  # another drive on Windows
        return path


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


TRACE_LEGEND = (
    '<p class="small">Scores rank candidates within one shot; they are not probabilities. Entities and the '
    "continuity frame: 1. Events: the query's fused score, or for recent events 1 minus their place in line. "
    "Location frames chosen by view: the share of the view they overlap minus an age penalty. Frames chosen when "
    "no pose overlaps: recency (1 = newest) minus their similarity to frames already chosen, so an old "
    "near-duplicate scores near -1. Facts: their evidence count.</p>"
)


def _pose(pose) -> str:
    if pose is None:
        return "no camera pose given"
    return "pose (" + ", ".join(f"{v:g}" for v in pose) + ")"


def shot_section(plan, video: str | None, out: Path) -> str:
    """HTML of one shot: video, prompts, conditioning tables and the memory trace."""
    st, dyn = plan.static, plan.dynamic
    parts = [
        f'<div class="shot" id="{_e(plan.shot_id)}"><h2>{_e(plan.shot_id)} '
        f'<span class="small">{_e(format_time(plan.t))}, {plan.duration:g}s</span></h2>'
    ]
    parts.append(
        f'<div class="media">{_video(video)}<div><p><b>Prompt</b>: {_e(plan.prompt)}</p>'
        f'<p class="small"><b>Negative</b>: {_e(plan.negative_prompt)}</p>'
        f"<p><b>Camera</b>: {_e(dyn.camera.move)}, {_pose(dyn.camera.pose)}, fov {dyn.camera.fov:g}°; "
        f"<b>motion</b>: {_e(dyn.motion)}</p></div></div>"
    )
    ents = [
        [
            _e(e.id),
            _e(e.name),
            _e(e.kind),
            _e(e.appearance),
            ", ".join(_e(os.path.basename(p)) for p in e.reference_images) or "-",
            str(e.seed),
        ]
        for e in st.entities
    ]
    parts.append("<h3>Entities</h3>" + _table(["id", "name", "kind", "appearance", "reference images", "seed"], ents))
    if st.location is not None:
        loc = st.location
        refs = "".join(
            f'<a href="{_e(_rel(f.path, out))}"><img src="{_e(_rel(f.path, out))}" '
            f'title="{_e(f.shot_id)} frame {f.frame_index}"></a>'
            for f in loc.reference_frames
            if f.path
        )
        labels = ", ".join(f"{_e(f.shot_id)}#{f.frame_index}" for f in loc.reference_frames) or "none (first visit)"
        parts.append(
            f"<h3>Location</h3><p><b>{_e(loc.name)}</b> ({_e(loc.id)}): {_e(loc.appearance)}<br>"
            f'reference frames: {labels}</p><div class="ref">{refs}</div>'
        )
    cont = dyn.continue_from
    parts.append(
        "<p><b>Continues from</b>: " + (f"{_e(cont.shot_id)} frame {cont.frame_index}" if cont else "-") + "</p>"
    )
    if dyn.recent:
        parts.append("<p><b>Recent</b>:</p><ul>" + "".join(f"<li>{_e(r)}</li>" for r in dyn.recent) + "</ul>")
    if dyn.retrieved:
        parts.append("<p><b>Retrieved</b>:</p><ul>" + "".join(f"<li>{_e(r)}</li>" for r in dyn.retrieved) + "</ul>")
    trace = [[_e(t.id), _e(t.kind), f"{t.score:.3f}", _e(t.reason)] for t in plan.memory_trace]
    parts.append("<h3>Memory trace</h3>" + _table(["id", "kind", "score", "reason"], trace) + TRACE_LEGEND + "</div>")
    return "".join(parts)


def write_report(
    out: Path,
    run,
    *,
    videos: dict[str, str],
    story_video: str | None,
    contact_sheet: str | None,
    seconds: float,
    backend: str = "storyboard",
) -> str:
    """Write ``out/report.html`` for a :class:`~agentmem.story.director.StoryRun`; returns its path."""
    story = run.story
    toc = " · ".join(f'<a href="#{_e(p.shot_id)}">{_e(p.shot_id)}</a>' for p in run.plans)
    head = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(story.title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_e(story.title)}</h1>"
        f"<p>{len(run.plans)} shots from <code>{_e(story.source)}</code>, generated with memory in the loop "
        f"in {seconds:.1f}s. Plans: <a href='plan.json'>plan.json</a>; whole story: "
        f"<a href='{_e(story_video or '')}'>{_e(story_video or '-')}</a>.</p>{_backend_note(backend)}<p>{toc}</p>"
    )
    sheet = ""
    if contact_sheet:
        sheet = f'<h2>Contact sheet</h2><img src="{_img_data(contact_sheet)}" style="max-width:100%">'
    body = "".join(shot_section(p, videos.get(p.shot_id), out) for p in run.plans)
    path = out / "report.html"
    path.write_text(head + sheet + body + "</body></html>", encoding="utf-8")
    return str(path)


def _backend_note(backend: str) -> str:
    if backend == "storyboard":
        return (
            "<p><b>The frames come from the storyboard back end, a procedural preview renderer, not a learned "
            "model.</b> They show what memory handed to the generator (who, wearing what, where, from which "
            "camera), not image quality.</p>"
        )
    return f"<p>Back end: <code>{_e(backend)}</code>.</p>"


__all__ = ["shot_section", "write_report"]
