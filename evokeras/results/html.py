"""A run as one self-contained HTML page: ``evokeras report DIR --html``.

The page holds the run's summary (task, objectives, budget, evaluations, versions), its
figures (stats, Pareto front, hypervolume, drawn from ``run.db``, and the task's own
figures from ``plots/``) inlined as base64 images, the front's table (the rows of
``evokeras report``), each key linking to the member's section: its architecture drawn
as a chain of layers (inline SVG), its search and test figures, and its genome. Nothing
is loaded from the network or from other files: the page can be mailed or archived.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from evokeras._io import write_text_atomic
from evokeras.engine.store import RunStore
from evokeras.results.plotting import SHORT_KEY, plot_hypervolume, plot_pareto, plot_stats
from evokeras.results.report import front_table, read_front, report_title

__all__ = ["architecture_svg", "html_report", "save_html_report"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
th { background: #f4f4f4; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f8f8f8; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
section.member { border-top: 2px solid #c33; margin-top: 2em; }
.member-body { display: flex; gap: 2em; align-items: flex-start; flex-wrap: wrap; }
"""

#: Fields of a layer gene shown in its box, after its kind.
_LAYER_FIELDS = ("units", "kernel_size", "strides", "pool_type", "pool_size", "rate", "activation", "residual", "merge")


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _img(data: bytes, mime: str, alt: str, caption: str) -> str:
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return (f'<figure><img src="{src}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _layer_text(layer: dict[str, Any]) -> str:
    parts = [str(layer.get("kind", "?"))]
    for name in _LAYER_FIELDS:
        value = layer.get(name)
        if value is None or value is False:
            continue
        parts.append(name if value is True else f"{name}={value}")
    return " ".join(parts)


def architecture_svg(genome: dict[str, Any]) -> str:
    """An inline SVG of a network genome: input, one box per layer gene, the reduction,
    the head; an edit program (no ``layers``) is drawn as its list of steps."""
    if "layers" in genome:
        steps = ["input"] + [_layer_text(layer) for layer in genome["layers"]]
        steps += [f"reduce: {genome.get('reduce', '-')}", "head"]
    else:
        steps = ["base network"] + [f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(genome.items())]
    box_h, gap = 26, 14
    width = max(240, 8 * max(len(t) for t in steps) + 24)  # 12 px monospace: about 7.2 px a character
    height = len(steps) * (box_h + gap)
    items = []
    for i, text in enumerate(steps):
        y = i * (box_h + gap) + 2
        edge = i in (0, len(steps) - 1)
        items.append(f'<rect x="2" y="{y}" width="{width - 4}" height="{box_h}" rx="5" '
                     f'fill="{"#eef3fb" if edge else "#fff"}" stroke="#557"/>')
        items.append(f'<text x="{width // 2}" y="{y + 17}" text-anchor="middle" font-size="12" '
                     f'font-family="monospace">{html.escape(text)}</text>')
        if i:
            items.append(f'<line x1="{width // 2}" y1="{y - gap}" x2="{width // 2}" y2="{y}" stroke="#557" '
                         f'marker-end="url(#arrow)"/>')
    marker = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
              'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#557"/></marker></defs>')
    return (f'<svg width="{width}" height="{height}" '
            f'role="img" aria-label="architecture">{marker}{"".join(items)}</svg>')


def _table(cols: list[str], rows: list[list[str]], *, link_first: bool = False) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for row in rows:
        cells = [f'<a href="#m-{html.escape(row[0])}">{html.escape(row[0])}</a>' if link_first else html.escape(row[0])]
        cells += [html.escape(v) for v in row[1:]]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figures_table(member: dict[str, Any]) -> str:
    rows = [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in member.get("objectives", {}).items()]
    rows += [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in sorted(member.get("metrics", {}).items())]
    rows += [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in sorted(member.items())
             if k.startswith("test_") or k in ("status", "error", "model", "final_fit_seconds")]
    return _table(["figure", "value"], rows)


def html_report(run_dir: str | Path) -> str:
    """The self-contained HTML page of the run in ``run_dir`` (see the module doc)."""
    run_dir = Path(run_dir)
    data = read_front(run_dir)
    try:
        stored = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        stored = {}
    config, versions = stored.get("config", {}), stored.get("versions", {})
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>evokeras: {html.escape(run_dir.resolve().name)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(report_title(run_dir, data))}</h1>"]
    with RunStore(run_dir / "run.db", readonly=True) as store:
        n_eval = store.count_evaluations()
        n_failed = store.count_evaluations(failed=True)
        gens = store.generations()
        figures = [(_figure_png(fn(store)), name) for fn, name in (
            (plot_stats, "objectives of the population by generation"),
            (plot_pareto, "every candidate and the Pareto front (labels: key)"),
            (plot_hypervolume, "hypervolume of the front by generation"))]
    summary = [["task", str(config.get("task", "-"))], ["study / budget", f"{config.get('study', '-')} / {config.get('budget_name', '-')}"],
               ["objectives", ", ".join(f"{k} ({'max' if float(w) > 0 else 'min'})" for k, w in data["objectives"].items())],
               ["seed", str(config.get("seed", "-"))], ["generations", str(len(gens))],
               ["evaluations", f"{n_eval} ({n_failed} failed)"], ["front members", str(len(data["members"]))]]
    summary += [[f"version of {k}", str(v)] for k, v in versions.items()]
    parts += ["<h2>Run</h2>", _table(["", ""], summary)]
    parts.append("<h2>Figures</h2>")
    parts += [_img(png, "image/png", caption, caption) for png, caption in figures]
    task_figures = sorted(p for p in (run_dir / "plots").glob("*")
                          if p.suffix in (".png", ".gif") and p.stem not in ("stats", "pareto", "hypervolume"))
    parts += [_img(p.read_bytes(), f"image/{p.suffix[1:]}", p.name, f"the task's figure {p.name}") for p in task_figures]
    cols, rows = front_table(data)
    parts += ["<h2>Pareto front</h2>",
              f"<p>One row per member, as <code>evokeras report</code> prints it; the Pareto plot labels "
              f"each point with its key's first {SHORT_KEY} characters. A key leads to the member.</p>",
              _table(cols, rows, link_first=True)]
    for member in data["members"]:
        key = html.escape(member["key"])
        parts += [f'<section class="member" id="m-{key}"><h3>{key}</h3><div class="member-body">',
                  f"<div>{architecture_svg(member['genome'])}</div>",
                  f"<div>{_figures_table(member)}</div></div>",
                  f"<details><summary>genome</summary><pre>{html.escape(json.dumps(member['genome'], indent=1))}</pre>"
                  "</details></section>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def save_html_report(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write :func:`html_report` to ``path`` (default ``run_dir/report.html``) and return it."""
    out = Path(path) if path is not None else Path(run_dir) / "report.html"
    write_text_atomic(out, html_report(run_dir))
    return out
