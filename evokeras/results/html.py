"""A run as one self-contained HTML page: ``evokeras report DIR --html``.

The page, titled ``evokeras run NAME: TASK``, holds the run's summary (task, objectives,
budget, evaluations, versions), its figures (stats, Pareto front, hypervolume, lineages,
drawn from ``run.db``, and the task's own figures from ``plots/``) inlined as base64
images -- a figure of fewer than 2 points is left out, with a sentence saying why -- the
front's table (the rows of ``evokeras report``), each key linking to the member's
section: its architecture drawn as a chain of layers (inline SVG), its figures, each
once with its unit (:func:`~evokeras.results.report.format_figure`), the Python that
loads its saved model (:func:`load_snippet`), and its genome. Nothing is loaded from
the network or from other files: the page can be mailed or archived. Making it only
reads the run directory.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from evokeras._io import MAX_CONFIG_BYTES, UnreadableFile, read_json, write_text_atomic
from evokeras.engine.store import RunStore
from evokeras.results.plotting import (
    SHORT_KEY,
    figure_points,
    plot_hypervolume,
    plot_lineages,
    plot_pareto,
    plot_stats,
)
from evokeras.results.report import format_figure, front_table, read_front

__all__ = ["architecture_svg", "html_report", "load_snippet", "member_figures", "page_title", "save_html_report"]

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
pre.snippet { font-size: 0.85em; border-left: 3px solid #557; }
table.figures th { text-align: left; background: #eef3fb; }
p.note { color: #555; font-style: italic; }
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


def member_figures(member: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """A member's figures, each once and with its unit (:func:`format_figure`), in two
    groups: the search's (its objectives first, then its other measures) and the final
    model's (test figures, final training, status)."""
    objectives = member.get("objectives", {})
    metrics = {k: v for k, v in member.get("metrics", {}).items() if k not in objectives}
    search = [*objectives.items(), *sorted(metrics.items())]
    final = sorted((k, v) for k, v in member.items() if k.startswith(("test_", "final_")))
    final += [(k, member[k]) for k in ("status", "error") if k in member]
    groups = [("search (validation split)", search), ("final model (test split)", final)]
    return [(title, [(k, format_figure(k, v)) for k, v in rows]) for title, rows in groups if rows]


def _figures_table(member: dict[str, Any]) -> str:
    body = []
    for title, rows in member_figures(member):
        body.append(f'<tr><th colspan="2">{html.escape(title)}</th></tr>')
        body += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows]
    return f'<table class="figures"><tbody>{"".join(body)}</tbody></table>'


def load_snippet(model_path: str | Path) -> str:
    """Python that loads the saved model at ``model_path`` (the import registers the
    package's custom Keras layers, which a model may hold)."""
    return ("import evokeras.nets.layers  # registers the package's custom layers with Keras\n"
            "import keras\n\n"
            f"model = keras.saving.load_model({json.dumps(str(model_path))})\n"
            "model.summary()\n")


def _member_model(run_dir: Path, member: dict[str, Any]) -> str:
    """The snippet that loads the member's saved model, or why there is none."""
    model = member.get("model")
    if not model:
        return "<p>No saved model (the search has not finished, or this member's final training failed).</p>"
    if not (run_dir / model).is_file():
        return f"<p>Its model file <code>{html.escape(model)}</code> is missing from the run directory.</p>"
    path = (run_dir / model).as_posix()
    return (f"<p>Load its model in Python (the path as given to <code>evokeras report</code>; in the run "
            f"directory: <code>{html.escape(model)}</code>):</p>"
            f'<pre class="snippet"><code>{html.escape(load_snippet(path))}</code></pre>')


def page_title(run_dir: str | Path, config: dict[str, Any]) -> str:
    """``evokeras run NAME: TASK``: the run directory's name, the task (and its data's name)."""
    task = str(config.get("task", "unknown task"))
    options = config.get("task_options") if isinstance(config.get("task_options"), dict) else {}
    name = options.get("name") if isinstance(options.get("name"), str) else None
    if name and name != task:
        task += f" ({name})"
    return f"evokeras run {Path(run_dir).resolve().name}: {task}"


#: The run's own figures: file stem, function, caption.
_FIGURES = (("stats", plot_stats, "objectives of the population by generation"),
            ("pareto", plot_pareto, "every candidate and the Pareto front (labels: key)"),
            ("hypervolume", plot_hypervolume, "hypervolume of the front by generation"),
            ("lineages", plot_lineages, "training along each lineage and the validation figure"))


def _too_few(points: dict[str, int]) -> dict[str, str]:
    """Why a figure of fewer than 2 points is not drawn (figure name: reason); a
    figure without a single point (lineages of a run that inherits no weights) is
    simply absent."""
    def count(n: int, what: str) -> str:
        return f"{n} {what}" + ("" if n == 1 else "s")

    out = {}
    if points["generations"] < 2:
        out["stats"] = f"objectives by generation: {count(points['generations'], 'generation')}"
    if points["candidates"] < 2:
        out["pareto"] = f"candidates and front: {count(points['candidates'], 'successful candidate')}"
    if points["front"] == 1:
        out["hypervolume"] = ("hypervolume: one member on the front (each objective scaled by the front, "
                              "its hypervolume is 1 in every generation)")
    elif points["hypervolume"] < 2:
        out["hypervolume"] = f"hypervolume: {count(points['hypervolume'], 'generation')} with a front"
    if points["lineages"] == 1:
        out["lineages"] = "lineages: 1 candidate with a lineage"
    return out


def _run_figures(store: RunStore) -> list[str]:
    """The run's figures as inline images, and a sentence naming those not drawn."""
    points = figure_points(store)
    skipped = _too_few(points)
    parts = []
    for name, fn, caption in _FIGURES:
        if name in skipped or (name == "lineages" and not points["lineages"]):
            continue
        fig = fn(store)
        if fig is not None:
            parts.append(_img(_figure_png(fig), "image/png", caption, caption))
    if skipped:
        parts.append(f"<p class=\"note\">Not drawn, as a plot of fewer than 2 points shows nothing: "
                     f"{html.escape('; '.join(skipped.values()))}.</p>")
    return parts


def _read_config(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``config.json``'s configuration and versions (empty where unreadable)."""
    try:
        stored = read_json(run_dir / "config.json", max_bytes=MAX_CONFIG_BYTES)
    except UnreadableFile:
        stored = {}
    stored = stored if isinstance(stored, dict) else {}
    config, versions = stored.get("config"), stored.get("versions")
    return (config if isinstance(config, dict) else {}), (versions if isinstance(versions, dict) else {})


def _summary(run_dir: Path, config: dict[str, Any], versions: dict[str, Any], data: dict[str, Any],
             counts: tuple[int, int, int]) -> list[list[str]]:
    n_eval, n_failed, n_gens = counts
    rows = [["run directory", str(run_dir)], ["task", str(config.get("task", "-"))],
            ["study / budget", f"{config.get('study', '-')} / {config.get('budget_name', '-')}"],
            ["objectives", ", ".join(f"{k} ({'max' if float(w) > 0 else 'min'})" for k, w in data["objectives"].items())],
            ["seed", str(config.get("seed", "-"))], ["generations", str(n_gens)],
            ["evaluations", f"{n_eval} ({n_failed} failed)"], ["front members", str(len(data["members"]))]]
    return rows + [[f"version of {k}", str(v)] for k, v in versions.items()]


def _member_section(run_dir: Path, member: dict[str, Any]) -> str:
    key = html.escape(member["key"])
    return "\n".join([
        f'<section class="member" id="m-{key}"><h3>{key}</h3><div class="member-body">',
        f"<div>{architecture_svg(member['genome'])}</div>",
        f"<div>{_figures_table(member)}</div></div>", _member_model(run_dir, member),
        f"<details><summary>genome</summary><pre>{html.escape(json.dumps(member['genome'], indent=1))}</pre>"
        "</details></section>"])


def html_report(run_dir: str | Path) -> str:
    """The self-contained HTML page of the run in ``run_dir`` (see the module doc).

    It only reads the run directory: the run store is opened read-only
    (:class:`~evokeras.engine.store.RunStore`), nothing is written there."""
    run_dir = Path(run_dir)
    data = read_front(run_dir)
    config, versions = _read_config(run_dir)
    title = html.escape(page_title(run_dir, config))
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>{title}</title><style>{_STYLE}</style></head><body>", f"<h1>{title}</h1>"]
    if not data.get("final", True):
        parts.append("<p class=\"note\">The search has not finished: the front is its last checkpoint's, "
                     "without final models or test figures yet.</p>")
    with RunStore(run_dir / "run.db", readonly=True) as store:
        counts = (store.count_evaluations(), store.count_evaluations(failed=True), len(store.generations()))
        figures = _run_figures(store)
    parts += ["<h2>Run</h2>", _table(["", ""], _summary(run_dir, config, versions, data, counts)), "<h2>Figures</h2>"]
    parts += figures
    task_figures = sorted(p for p in (run_dir / "plots").glob("*")
                          if p.suffix in (".png", ".gif") and p.stem not in {name for name, _, _ in _FIGURES})
    parts += [_img(p.read_bytes(), f"image/{p.suffix[1:]}", p.name, f"the task's figure {p.name}") for p in task_figures]
    cols, rows = front_table(data)
    parts += ["<h2>Pareto front</h2>",
              f"<p>One row per member, as <code>evokeras report</code> prints it: the search's figures "
              f"(validation split), then the final model's <code>test_*</code> figures (test split). The "
              f"Pareto plot labels each point with its key's first {SHORT_KEY} characters; a key leads to "
              f"the member, its figures and the Python that loads its model.</p>",
              _table(cols, rows, link_first=True)]
    parts += [_member_section(run_dir, member) for member in data["members"]]
    parts.append("</body></html>")
    return "\n".join(parts)


def save_html_report(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write :func:`html_report` to ``path`` (default ``run_dir/report.html``) and return it."""
    out = Path(path) if path is not None else Path(run_dir) / "report.html"
    write_text_atomic(out, html_report(run_dir))
    return out
