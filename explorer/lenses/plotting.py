"""Drawing pieces every lens shares: a screen-share-friendly plotly layout, maps laid over
the image (plotly for hovering, PIL for PNG export), colour scales and a patch-grid picker.

Every figure gets a title, axis names and a colour bar; hover shows values and positions.
Figures are assembled as plain dicts (``PlainFigure``) and turned into a plotly figure once:
each ``update_*`` on a live plotly figure walks its validated property tree (milliseconds per
call), and a control change must redraw a whole tab within 50 ms.
"""

from __future__ import annotations

import base64
import copy
import io
import re
import unicodedata
from functools import lru_cache

import numpy as np
import plotly.colors
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

# Perceptual scales for magnitudes; a diverging one for signed values.
SEQUENTIAL_SCALES = ("Viridis", "Magma", "Inferno", "Cividis", "Plasma")
DIVERGING_SCALE = "RdBu_r"
FONT_SIZE = 15  # readable when screen-shared

_LUTS: dict[str, np.ndarray] = {}
_PALETTE = plotly.colors.qualitative.Light24  # ids (windows, regions, groups): cycled


def id_ticks(n: int) -> list[int]:
    """Whole-number colour-bar ticks for ids 0..n−1, at most about 12 of them."""
    return list(range(0, n, max(1, -(-n // 12))))


def discrete_scale(n: int) -> list:
    """A stepped colour scale giving ids 0..n−1 one flat colour each (use zmin=−0.5,
    zmax=n−0.5)."""
    n = max(n, 1)
    scale = []
    for i in range(n):
        color = _PALETTE[i % len(_PALETTE)]
        scale += [[i / n, color], [(i + 1) / n, color]]
    return scale


# plotly properties whose names hold an underscore (the rest of an underscore is a path)
_UNDERSCORED = frozenset({"plot_bgcolor", "paper_bgcolor", "error_x", "error_y", "error_z"})


def _plain(value):
    """``value`` with plotly's "magic underscores" spelled out (``title_text=`` ->
    ``{"title": {"text": ...}}``), in nested dicts and lists of dicts too; ``None`` leaves a
    property unset, as plotly's constructors do."""
    if isinstance(value, dict):
        out: dict = {}
        for key, item in value.items():
            if item is None:
                continue
            *path, last = [key] if key in _UNDERSCORED else key.split("_")
            target = out
            for part in path:
                target = target.setdefault(part, {})
            _merge(target, {last: _plain(item)})
        return out
    if isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value):
        return [_plain(v) for v in value]
    return value


def _merge(target: dict, updates: dict) -> None:
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _suffix(n: int) -> str:
    return "" if n == 1 else str(n)


class PlainFigure:
    """A plotly figure held as plain dicts, with the few ``go.Figure``/``make_subplots`` calls the
    lenses use (same names and arguments, magic underscores included); ``figure()`` builds the
    ``go.Figure`` once, unvalidated (tests validate every figure they draw)."""

    def __init__(self, rows: int = 1, cols: int = 1, subplot_titles=(), horizontal_spacing: float | None = None,
                 vertical_spacing: float | None = None):
        self.rows, self.cols = rows, cols
        self.data: list[dict] = []
        self.layout: dict = {"annotations": [], "shapes": [], "images": []}
        titles = list(subplot_titles or ())
        hs = 0.2 / cols if horizontal_spacing is None else horizontal_spacing  # make_subplots' defaults
        vs = (0.5 if titles else 0.3) / rows if vertical_spacing is None else vertical_spacing
        width, height = (1 - hs * (cols - 1)) / cols, (1 - vs * (rows - 1)) / rows
        for r in range(rows):
            for c in range(cols):
                n = r * cols + c + 1
                left, top = c * (width + hs), 1 - r * (height + vs)
                x = dict(anchor=f"y{_suffix(n)}")
                y = dict(anchor=f"x{_suffix(n)}")
                if rows * cols > 1:
                    x["domain"] = [left, min(left + width, 1.0)]
                    y["domain"] = [max(top - height, 0.0), top]
                self.layout[f"xaxis{_suffix(n)}"], self.layout[f"yaxis{_suffix(n)}"] = x, y
                if n <= len(titles) and titles[n - 1]:
                    self.layout["annotations"].append(dict(
                        text=titles[n - 1], x=left + width / 2, y=top, xref="paper", yref="paper",
                        xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=16)))

    def _cell(self, row: int | None, col: int | None) -> int | None:
        return None if row is None and col is None else ((row or 1) - 1) * self.cols + (col or 1)

    def refs(self, row: int | None = None, col: int | None = None) -> dict:
        """``xref``/``yref`` of the subplot at (row, col) (the first one by default)."""
        n = self._cell(row, col) or 1
        return dict(xref=f"x{_suffix(n)}", yref=f"y{_suffix(n)}")

    def domain(self, row: int = 1, col: int = 1) -> tuple[list[float], list[float]]:
        """(x domain, y domain) of a subplot in paper coordinates."""
        n = self._cell(row, col)
        x, y = self.layout[f"xaxis{_suffix(n)}"], self.layout[f"yaxis{_suffix(n)}"]
        return x.get("domain", [0.0, 1.0]), y.get("domain", [0.0, 1.0])

    def add_trace(self, trace, row: int | None = None, col: int | None = None) -> "PlainFigure":
        trace = _plain(trace if isinstance(trace, dict) else trace.to_plotly_json())
        n = self._cell(row, col)
        if n is not None and n > 1:
            trace.update(xaxis=f"x{n}", yaxis=f"y{n}")
        self.data.append(trace)
        return self

    def update_traces(self, selector: dict | None = None, **updates) -> "PlainFigure":
        updates = _plain(updates)
        for trace in self.data:
            if all(trace.get(k) == v for k, v in (selector or {}).items()):
                _merge(trace, copy.deepcopy(updates))
        return self

    def update_layout(self, **updates) -> "PlainFigure":
        _merge(self.layout, _plain(updates))
        return self

    def _update_axes(self, letter: str, row: int | None, col: int | None, updates: dict) -> "PlainFigure":
        n = self._cell(row, col)
        cells = range(1, self.rows * self.cols + 1) if n is None else (n,)
        for cell in cells:
            _merge(self.layout[f"{letter}axis{_suffix(cell)}"], copy.deepcopy(_plain(updates)))
        return self

    def update_xaxes(self, row: int | None = None, col: int | None = None, **updates) -> "PlainFigure":
        return self._update_axes("x", row, col, updates)

    def update_yaxes(self, row: int | None = None, col: int | None = None, **updates) -> "PlainFigure":
        return self._update_axes("y", row, col, updates)

    def add_shape(self, row: int | None = None, col: int | None = None, **shape) -> "PlainFigure":
        self.layout["shapes"].append({**self.refs(row, col), **_plain(shape)})
        return self

    def add_layout_image(self, image: dict, row: int | None = None, col: int | None = None) -> "PlainFigure":
        self.layout["images"].append({**self.refs(row, col), **_plain(image)})
        return self

    def add_annotation(self, row: int | None = None, col: int | None = None, **annotation) -> "PlainFigure":
        self.layout["annotations"].append({**self.refs(row, col), **_plain(annotation)})
        return self

    def update_annotations(self, **updates) -> "PlainFigure":
        for annotation in self.layout["annotations"]:
            _merge(annotation, copy.deepcopy(_plain(updates)))
        return self

    def figure(self) -> go.Figure:
        return go.Figure(self.data, self.layout, _validate=False)


# Title lines wrap at this many display units (a CJK character counts two): a figure half as wide as
# the lens column at 1280 px holds about that many at the title font; plotly never wraps, it cuts.
TITLE_WIDTH = 46
_CLAUSES = re.compile(r".*?(?:·\s+|[，；：]|$)")
_TOKENS = re.compile(r"[^\s，；：、）]*[，；：、）]?\s*")  # a word and the space after it, or up to a full-width mark


def display_width(text: str) -> int:
    plain = re.sub(r"<[^>]+>", "", text)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in plain)


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """``title`` with every line longer than ``width`` broken with <br> at a space or after a
    full-width mark (，；：、）), and a run with neither (Chinese) at the width itself."""
    lines = []
    for line in title.replace("\n", "<br>").split("<br>"):  # plotly breaks lines at <br> only
        current = ""
        for piece in _pieces(line, width):
            if current and display_width((current + piece).rstrip()) > width:
                lines.append(current)  # its trailing space stays: the title's text still reads "a b"
                current = piece.lstrip()
            else:
                current += piece
        lines.append(current)
    return "<br>".join(lines)


def _pieces(line: str, width: int) -> list[str]:
    """The line in the pieces a break may come between: clauses (up to a "·" or a full-width
    comma or colon) where they fit, words where a clause does not, and chunks of a long word."""
    pieces = []
    for clause in (c for c in _CLAUSES.findall(line) if c):
        if display_width(clause.rstrip()) <= width:
            pieces.append(clause)
        else:
            pieces += [chunk for token in _TOKENS.findall(clause) if token for chunk in _chunks(token, width)]
    return pieces


def _chunks(token: str, width: int) -> list[str]:
    out = []
    while display_width(token.rstrip()) > width:
        cut = next(i for i in range(len(token), 0, -1) if display_width(token[:i]) <= width)
        out.append(token[:cut])
        token = token[cut:]
    return out + [token]


TITLE_LINE_PX, SUBTITLE_LINE_PX = 24, 20  # a line of the title, of a panel's title


def _top_panel_title_lines(fig) -> int:
    """Lines of the tallest title above the top row of panels (``make_subplots`` puts them in the
    top margin, under the figure's title), 0 when the figure has none."""
    layout = fig.layout if isinstance(fig, PlainFigure) else fig.layout.to_plotly_json()
    return max((str(a.get("text", "")).count("<br>") + 1 for a in layout.get("annotations", ())
                if a.get("yref") == "paper" and a.get("yanchor") == "bottom" and a.get("y", 0) >= 0.99),
               default=0)


def base_layout(fig, title: str, x_title: str, y_title: str, height: int = 460):
    """Title, fonts, margins and axis names of every figure (a ``PlainFigure`` or a ``go.Figure``).

    The title hangs from the top and the top margin holds all its lines and the top panels'
    titles under it; ``height`` is the figure's height with a one-line title, and each further
    line adds its own height (a wrapped title never squeezes the panels or covers them)."""
    title = wrap_title(title)
    panel_lines = _top_panel_title_lines(fig)
    lines = title.count("<br>") + 1
    top = 16 + TITLE_LINE_PX * lines + (SUBTITLE_LINE_PX * panel_lines + 8 if panel_lines else 24)
    # plotly anchors a title's middle line, not its first, at the pad: lower a wrapped one by
    # half of each further line (1.3 em), or its first line is cut off at the top
    pad = 12 + round((lines - 1) * 0.65 * (FONT_SIZE + 3))
    fig.update_layout(
        title=dict(text=title, x=0.02, xanchor="left", y=1.0, yref="container", yanchor="top", pad=dict(t=pad),
                   font=dict(size=FONT_SIZE + 3)),
        font=dict(size=FONT_SIZE),
        height=height + max(0, top - 64),
        margin=dict(l=70, r=20, t=top, b=60),
        plot_bgcolor="white",
        hoverlabel=dict(font_size=FONT_SIZE),
    )
    # automargin: long tick labels (slot names) push the axis name out instead of under it
    fig.update_xaxes(title_text=x_title, automargin=True)
    fig.update_yaxes(title_text=y_title, automargin=True)
    return fig


def colorbar(title: str) -> dict:
    return dict(title=dict(text=title, side="right"), thickness=16)


def constant_value(values: np.ndarray) -> float | None:
    """The one value of a map that is the same everywhere (NaN cells aside), else None: such a
    map draws as one flat colour and must say so, or it looks broken."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size < 2:
        return None
    lo, hi = float(finite.min()), float(finite.max())
    return lo if hi - lo <= 1e-6 * max(1.0, abs(hi)) else None


def ticks_with_mark(lo: float, hi: float, mark: float, label: str, count: int = 4) -> dict:
    """Colour-bar ticks: about ``count`` round values from ``lo`` to ``hi`` and, where it falls in
    that range, one at ``mark`` named ``label`` (the uniform weight 1/N of an attention row)."""
    lo, hi = float(lo), float(hi)
    raw = max(hi - lo, 1e-12) / count
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    values = [float(v) for v in np.arange(np.ceil(lo / step) * step, hi + step * 1e-6, step)]
    if not lo <= mark <= hi:
        return dict(tickvals=values, ticktext=[f"{v:.3g}" for v in values])
    values = [v for v in values if abs(v - mark) > 0.6 * step]  # room for the mark's own label
    ticks = sorted(values + [float(mark)])
    return dict(tickvals=ticks, ticktext=[label if v == mark else f"{v:.3g}" for v in ticks])


@lru_cache(maxsize=32)
def _png_data_uri(key: bytes, shape: tuple[int, ...]) -> str:
    image = Image.fromarray(np.frombuffer(key, dtype=np.uint8).reshape(shape))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_data_uri(image: np.ndarray) -> str:
    """PNG data URI of an (H, W, 3) uint8 image (memoised: sliders redraw the same image)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return _png_data_uri(image.tobytes(), image.shape)


def overlay_figure(image: np.ndarray, values: np.ndarray, patch_size: tuple[int, int], **options) -> go.Figure:
    """``overlay`` as a plotly figure."""
    return overlay(image, values, patch_size, **options).figure()


def overlay(image: np.ndarray, values: np.ndarray, patch_size: tuple[int, int], *,
            title: str, colorbar_title: str, colorscale: str | list = "Viridis",
            token_offset: int | None = 0, value_name: str = "weight",
            value_format: str = ".4f", zmin: float | None = None, zmax: float | None = None,
            highlight: tuple[int, int] | None = None, opacity: float = 0.6,
            x_title: str = "x (pixels)", y_title: str = "y (pixels)",
            height: int = 460, ids: int | None = None, ticks: dict | None = None) -> PlainFigure:
    """A (rows, cols) map of patches/tokens drawn over the image the model saw, hoverable
    per cell (row, col, token index unless ``token_offset`` is None, value). With ``ids`` = n the
    values are ids 0..n−1 (windows, groups): one flat colour each, whole numbers on the bar."""
    colorbar_extra = dict(ticks or {})
    if ids is not None:
        colorscale, zmin, zmax, value_format = discrete_scale(ids), -0.5, ids - 0.5, ".0f"
        colorbar_extra = dict(tickvals=id_ticks(ids))
    rows, cols = values.shape
    ph, pw = patch_size
    height_px, width_px = image.shape[:2]
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    custom = np.stack([r, c, (token_offset or 0) + r * cols + c], axis=-1)
    token_line = "" if token_offset is None else "token #%{customdata[2]}<br>"
    fig = PlainFigure()
    fig.add_trace(dict(
        type="heatmap", z=values, x=(np.arange(cols) + 0.5) * pw, y=(np.arange(rows) + 0.5) * ph,
        customdata=custom, colorscale=colorscale, opacity=opacity, zmin=zmin, zmax=zmax,
        colorbar={**colorbar(colorbar_title), **colorbar_extra},
        hovertemplate=("patch (row %{customdata[0]}, col %{customdata[1]})<br>" + token_line
                       + value_name + " = %{z:" + value_format + "}<extra></extra>"),
    ))
    fig.add_layout_image(dict(source=image_data_uri(image), x=0, y=0, sizex=width_px, sizey=height_px,
                              sizing="stretch", layer="below"))
    if highlight is not None:
        hr, hc = highlight
        fig.add_shape(type="rect", x0=hc * pw, x1=(hc + 1) * pw, y0=hr * ph, y1=(hr + 1) * ph,
                      line=dict(color="#ff2d55", width=3))
    # A panorama's map is a strip: the figure shrinks to it (down to a usable size) instead of
    # framing it with blank space, and an axis drawn too short for plotly's ticks gets its two ends.
    plot_h = height - DEFAULT_MARGINS_PX
    fitted = int(min(plot_h, max(MIN_PLOT_PX, OVERLAY_WIDTH_PX * height_px / max(width_px, 1))))
    drawn_w, drawn_h = min(OVERLAY_WIDTH_PX, fitted * width_px / max(height_px, 1)), min(
        fitted, OVERLAY_WIDTH_PX * height_px / max(width_px, 1))
    fig.update_xaxes(range=[0, width_px], showgrid=False, constrain="domain", **_end_ticks(drawn_w, width_px))
    fig.update_yaxes(range=[height_px, 0], showgrid=False, scaleanchor="x", constrain="domain",
                     **_end_ticks(drawn_h, height_px))
    return base_layout(fig, title, x_title, y_title, height - (plot_h - fitted))


# An overlay's plot area at 1280 px (half the page, less margins and colour bar), the least height
# a map keeps (its axis name and colour bar fit), the margins around a one-line title's plot area.
OVERLAY_WIDTH_PX, MIN_PLOT_PX, DEFAULT_MARGINS_PX = 440, 220, 124
SHORT_AXIS_PX = 80


def _end_ticks(drawn_px: float, extent: int) -> dict:
    """Ticks at an axis's two ends when it is drawn shorter than SHORT_AXIS_PX (plotly's own
    ticks would overlap there); nothing to change otherwise."""
    return dict(tickvals=[0, extent]) if drawn_px < SHORT_AXIS_PX else {}


# --------------------------------------------------------------------------- PIL rendering

def _lut(scale: str) -> np.ndarray:
    """256-entry RGB lookup table sampled from a plotly colour scale."""
    if scale not in _LUTS:
        colors = plotly.colors.get_colorscale(scale)
        stops = np.array([s for s, _ in colors])
        rgb = np.array([plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(c)[0][0])
                        for _, c in colors], dtype=float)
        t = np.linspace(0, 1, 256)
        _LUTS[scale] = np.stack([np.interp(t, stops, rgb[:, i]) for i in range(3)], 1).astype(np.uint8)
    return _LUTS[scale]


def colorize(values: np.ndarray, scale: str = "Viridis", vmin: float | None = None,
             vmax: float | None = None) -> np.ndarray:
    vmin = float(np.nanmin(values)) if vmin is None else vmin
    vmax = float(np.nanmax(values)) if vmax is None else vmax
    norm = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    return _lut(scale)[np.round(norm * 255).astype(int)]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def overlay_png(image: np.ndarray, values: np.ndarray, title: str, colorbar_title: str,
                scale: str = "Viridis", alpha: float = 0.6) -> Image.Image:
    """The same map as ``overlay_figure`` as a static picture with title and colour bar."""
    h, w = image.shape[:2]
    heat = Image.fromarray(colorize(values, scale)).resize((w, h), Image.NEAREST)
    blended = Image.blend(Image.fromarray(image).convert("RGB"), heat, alpha)
    scale_up = max(1, 384 // max(h, w))
    blended = blended.resize((w * scale_up, h * scale_up), Image.NEAREST)
    bw, bh = blended.size
    title_width = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=_font(16)))
    canvas = Image.new("RGB", (max(bw + 110, title_width + 20), bh + 50), "white")
    canvas.paste(blended, (10, 40))
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 10), title, fill="black", font=_font(16))
    bar = colorize(np.linspace(1, 0, bh)[:, None].repeat(16, 1), scale, 0, 1)
    canvas.paste(Image.fromarray(bar), (bw + 20, 40))
    vmin, vmax = float(np.nanmin(values)), float(np.nanmax(values))
    draw.text((bw + 40, 36), f"{vmax:.3g}", fill="black", font=_font(13))
    draw.text((bw + 40, 40 + bh - 14), f"{vmin:.3g}", fill="black", font=_font(13))
    draw.text((bw + 40, 40 + bh // 2), colorbar_title[:12], fill="black", font=_font(12))
    return canvas


# A strip (a panorama's 2×27 tokens) would be a 448×33 px picture, hidden behind the image label:
# it is drawn on a canvas at least this tall, centred, with room above for the label.
PICKER_MIN_HEIGHT = 160


def picker_size(image_hw: tuple[int, int], display_side: int = 448) -> tuple[int, int]:
    """(width, height) of the picture ``patch_picker_image`` draws for an image of (H, W)."""
    h, w = image_hw
    factor = display_side / max(h, w)
    return max(1, round(w * factor)), max(1, round(h * factor))


def picker_layout(image_hw: tuple[int, int], display_side: int = 448) -> tuple[tuple[int, int], tuple[int, int]]:
    """(canvas size, picture offset) of a picker: the picture alone, or a short one centred on a
    canvas of ``PICKER_MIN_HEIGHT``."""
    width, height = picker_size(image_hw, display_side)
    if height >= PICKER_MIN_HEIGHT:
        return (width, height), (0, 0)
    return (width, PICKER_MIN_HEIGHT), (0, (PICKER_MIN_HEIGHT - height) // 2)


def patch_picker_image(image: np.ndarray, grid: tuple[int, int], selected: tuple[int, int] | None,
                       display_side: int = 448) -> Image.Image:
    """The model's input enlarged, with the patch grid drawn and the selected patch boxed;
    a click at (x, y) on it maps back to a patch with ``clicked_patch``."""
    size = picker_size(image.shape[:2], display_side)
    picture = Image.fromarray(image).resize(size, Image.BICUBIC)
    draw = ImageDraw.Draw(picture, "RGBA")
    rows, cols = grid
    for r in range(1, rows):
        y = r * size[1] / rows
        draw.line([(0, y), (size[0], y)], fill=(255, 255, 255, 110), width=1)
    for c in range(1, cols):
        x = c * size[0] / cols
        draw.line([(x, 0), (x, size[1])], fill=(255, 255, 255, 110), width=1)
    if selected is not None:
        r, c = selected
        box = [c * size[0] / cols, r * size[1] / rows, (c + 1) * size[0] / cols, (r + 1) * size[1] / rows]
        draw.rectangle(box, outline=(255, 45, 85, 255), width=3)
    canvas_size, offset = picker_layout(image.shape[:2], display_side)
    if canvas_size == size:
        return picture
    canvas = Image.new("RGB", canvas_size, (236, 236, 236))
    canvas.paste(picture, offset)
    return canvas


def clicked_patch(image: np.ndarray, grid: tuple[int, int], xy: tuple[float, float],
                  display_side: int = 448) -> tuple[int, int]:
    """The (row, col) patch under a click at pixel ``xy`` of ``patch_picker_image(image, grid, ...)``
    (its size is computed, not drawn); a click on a canvas's margin takes the nearest patch."""
    _, (ox, oy) = picker_layout(image.shape[:2], display_side)
    return patch_at(xy[0] - ox, xy[1] - oy, picker_size(image.shape[:2], display_side), grid)


def patch_at(x: float, y: float, display_size: tuple[int, int], grid: tuple[int, int]) -> tuple[int, int]:
    """The (row, col) patch under a click at pixel (x, y) of a picker image of ``display_size``."""
    width, height = display_size
    rows, cols = grid
    row = min(rows - 1, max(0, int(y * rows / height)))
    col = min(cols - 1, max(0, int(x * cols / width)))
    return row, col


def message_figure(title: str) -> go.Figure:
    """An empty figure that only says something (e.g. that an image is needed)."""
    fig = PlainFigure().update_xaxes(visible=False).update_yaxes(visible=False)
    return base_layout(fig, title, "", "", height=200).figure()
