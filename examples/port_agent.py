"""A port of an exported adacompress agent, from its folder and docs/agent-card.md
alone: numpy, Pillow and ONNX Runtime, nothing of adacompress.

It is the spec run as code, one function a step, in the order of
docs/agent-card.md: decode, the photo cap, the state graph's inputs, the two
graphs, the action applied. A port to another language or library follows the same
steps; ``--check`` compares this one with the card's reference vectors, and
``--compare-view-resize`` measures what another resize filter for the network's
view changes (the tolerance a porter has).

    python examples/port_agent.py AGENT --check
    python examples/port_agent.py AGENT photo.jpg ...         # one JSON line each
    python examples/port_agent.py AGENT --images DIR \
        --compare-view-resize bilinear,lanczos
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

FILTERS = {f.name.lower(): f for f in Image.Resampling}
MAX_PIXELS = 100_000_000
"""Photos with more pixels (from the header) are skipped."""
CLOUD_SIDE, CLOUD_PADDING = 224, 32
"""The cloud view that ``probe_from: view`` probes stand in for."""
STATE_TOLERANCE = 1e-4
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".tif", ".tiff", ".webp", ".bmp"}


class Skipped(Exception):
    """A photo that gets no upload, and why."""


# -- step 1: decode -------------------------------------------------------------


def decode(data: bytes, cap: int | None) -> Image.Image:
    """The photo as 8-bit RGB, EXIF orientation applied; a JPEG over twice the cap
    decoded at a DCT scale that keeps its shorter side at least ``cap``."""
    Image.MAX_IMAGE_PIXELS = None  # the limit below is the one that holds
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise Skipped(f"image too large: {width}x{height}")
        if cap is not None and image.format == "JPEG":
            scale = min(1.0, cap / max(1, min(width, height)))
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise Skipped(f"not an image Pillow can read: {err}") from None
    return to_rgb(ImageOps.exif_transpose(image))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode as 8-bit RGB: high bit depths scaled, alpha onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(to_8_bit(np.asarray(image))).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def to_8_bit(array: np.ndarray) -> np.ndarray:
    """Integers: kept when none is over 255, else 0..65535 scaled, rounded half
    up; floats: their own range (widened to include 0..1) stretched to 0..255."""
    if array.dtype.kind == "f":
        low, high = float(array.min(initial=0)), float(array.max(initial=1))
        stretched = (array.astype(np.float64) - low) / (high - low or 1.0) * 255 + 0.5
        return stretched.astype(np.uint8)
    peak = 65535 if array.max(initial=0) > 255 else 255
    values = np.clip(array.astype(np.int64), 0, peak)
    return ((values * 510 + peak) // (2 * peak)).astype(np.uint8)


# -- step 2: the photo cap ------------------------------------------------------


def capped(
    image: Image.Image, cap: int | None, resample: Image.Resampling
) -> Image.Image:
    """Reduced so that its shorter side is at most ``cap``."""
    width, height = image.size
    if cap is None or min(width, height) <= cap:
        return image
    scale = cap / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, resample)


def scaled_size(size: tuple[int, int], scale: float, min_side: int) -> tuple[int, int]:
    """``size`` times ``scale``, the shorter side never below ``min_side``, never
    enlarged; Python's ``round`` (half to even)."""
    width, height = size
    shortest = min(width, height)
    scale = min(1.0, max(scale, min(min_side, shortest) / shortest))
    if scale == 1.0:
        return size
    return max(1, round(width * scale)), max(1, round(height * scale))


# -- steps 3 and 4: the state graph's inputs, the graphs ---------------------------


class Agent:
    """An exported agent's folder: its card and two ONNX Runtime sessions."""

    def __init__(self, folder: Path, view_resize: str | None = None) -> None:
        self.folder = folder
        self.card = json.loads((folder / "card.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.state_graph = ort.InferenceSession(
            str(folder / "state.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.policy_graph = ort.InferenceSession(
            str(folder / "policy.onnx"), options, providers=["CPUExecutionProvider"]
        )
        algorithm, self.prep = self.card["algorithm"], self.card["preprocessing"]
        self.view_filter = FILTERS[view_resize or algorithm["view_resize"]]
        self.photo_filter = FILTERS[algorithm["photo_resize"]]
        self.algorithm = algorithm
        limits = self.card["limits"]
        self.min_side = limits.get("min_side") or 1
        self.max_bytes = limits.get("max_bytes")
        cap = self.card.get("photo_cap")
        self.cap = None if cap is None else max(cap, self.min_side)

    def seen(self, data: bytes) -> Image.Image:
        """Steps 1 and 2: what the agent sees of the photo ``data``."""
        return capped(decode(data, self.cap), self.cap, self.photo_filter)

    def view(self, image: Image.Image) -> Image.Image:
        """The centre ``size / (size + crop_padding)`` of the shorter side (a
        fractional box), resized to ``size`` x ``size``."""
        size, padding = self.prep["input_size"], self.prep["crop_padding"]
        width, height = image.size
        side = min(width, height) * size / (size + padding)
        left, top = (width - side) / 2, (height - side) / 2
        box = (left, top, left + side, top + side)
        return image.resize((size, size), self.view_filter, box=box)

    def views(self, image: Image.Image) -> list[Image.Image]:
        """The network's view, then one per probe scale (none for the shipped
        agents)."""
        scales = self.prep["probe_scales"]
        if self.prep["probe_from"] == "photo":
            photos = [image] + [
                image.resize(scaled_size(image.size, s, 1), self.photo_filter)
                for s in scales
            ]
            return [self.view(photo) for photo in photos]
        view, size = self.view(image), self.prep["input_size"]
        side = min(image.size) * CLOUD_SIDE / (CLOUD_SIDE + CLOUD_PADDING)
        probes = [view]
        for scale in scales:
            kept = max(1, round(size * min(1.0, scale * side / CLOUD_SIDE)))
            if kept >= size:
                probes.append(view)
                continue
            small = view.resize((kept, kept), self.photo_filter)
            probes.append(small.resize((size, size), self.view_filter))
        return probes

    def state(self, image: Image.Image) -> np.ndarray:
        """Steps 3 and 4: the state graph on the photo's views and log pixel count.
        Shape: (dim,)."""
        pixels = np.stack([np.asarray(v) for v in self.views(image)])
        pixels = pixels.transpose(0, 3, 1, 2).astype(np.float32)
        pixels = (pixels - np.float32(self.prep["offset"])) / np.float32(
            self.prep["scale"]
        )
        log_pixels = np.array([[math.log(image.width * image.height)]], np.float32)
        feed = {"pixels": pixels[None], "log_pixels": log_pixels}
        return np.asarray(self.state_graph.run(None, feed)[0])[0]

    def choose(self, state: np.ndarray) -> dict[str, Any]:
        """Step 5: the policy graph's action, an entry of the card's actions."""
        index = self.policy_graph.run(None, {"state": state[None].astype(np.float32)})[
            0
        ]
        return dict(self.card["actions"][int(index[0])])

    # -- step 6: the action applied -----------------------------------------------

    def upload(self, image: Image.Image, action: dict[str, Any]) -> bytes:
        """The bytes to send: downscaled (never below ``min_side``), encoded; over
        ``max_bytes``, lower qualities, then smaller sizes at the lowest."""
        if min(image.size) < self.min_side:
            raise Skipped(
                f"its shorter side is {min(image.size)} px, under the service's "
                f"minimum of {self.min_side} px"
            )
        size = scaled_size(image.size, action["scale"], self.min_side)
        data = self.encode(image, size, action["quality"], action["format"])
        if self.max_bytes is None or len(data) <= self.max_bytes:
            return data
        qualities = self.algorithm["fallback_qualities"]
        for quality in (q for q in qualities if q < action["quality"]):
            data = self.encode(image, size, quality, action["format"])
            if len(data) <= self.max_bytes:
                return data
        while min(size) > self.min_side:
            size = scaled_size(size, self.algorithm["fallback_scale"], self.min_side)
            data = self.encode(image, size, qualities[-1], action["format"])
            if len(data) <= self.max_bytes:
                return data
        raise Skipped(f"cannot encode the image under {self.max_bytes:,} bytes")

    def encode(
        self, image: Image.Image, size: tuple[int, int], quality: int, format_: str
    ) -> bytes:
        if size != image.size:
            image = image.resize(size, self.photo_filter)
        buffer = io.BytesIO()
        if format_ == "webp":
            image.save(
                buffer, "WEBP", quality=quality, method=self.algorithm["webp_method"]
            )
        else:
            image.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()

    def decide(self, data: bytes) -> dict[str, Any]:
        """Every step for one photo: what it sees, the state, the action, the
        upload (or why there is none)."""
        try:
            image = self.seen(data)
        except Skipped as err:
            return {"skipped": str(err)}
        state = self.state(image)
        action = self.choose(state)
        result = {"size": list(image.size), "state": state, "action": action["key"]}
        try:
            sent = self.upload(image, action)
        except Skipped as err:
            return {**result, "skipped": str(err)}
        width, height = Image.open(io.BytesIO(sent)).size
        return {**result, "upload": [width, height, len(sent)]}


# -- the command line -------------------------------------------------------------


def check(agent: Agent) -> int:
    """Compare every reference vector of the card; 0 when all match."""
    failures = 0
    for reference in agent.card["reference"]:
        data = (agent.folder / reference["file"]).read_bytes()
        problems = []
        if hashlib.sha256(data).hexdigest() != reference["sha256"]:
            problems.append("photo's SHA-256")
        got = agent.decide(data)
        if got.get("size") != reference["size"]:
            problems.append(f"size {got.get('size')} != {reference['size']}")
        state = got.get("state")
        if (
            state is None
            or np.abs(state - np.array(reference["state"])).max() > STATE_TOLERANCE
        ):
            problems.append("state")
        if got.get("action") != reference["action"]:
            problems.append(f"action {got.get('action')} != {reference['action']}")
        if got.get("upload") != reference["upload"]:
            problems.append(f"upload {got.get('upload')} != {reference['upload']}")
        failures += bool(problems)
        print(f"{reference['file']}: {'; '.join(problems) or 'ok'}")
    total = len(agent.card["reference"])
    print(f"{total - failures} of {total} reference vectors match")
    return 1 if failures else 0


def photos_of(paths: list[str], images: str | None) -> list[Path]:
    found = [Path(p) for p in paths]
    if images:
        found += sorted(
            p for p in Path(images).rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES
        )
    return found


def compare(folder: Path, photos: list[Path], filters: list[str]) -> dict[str, Any]:
    """How many choices each view resize filter changes against the card's."""
    spec = Agent(folder)
    base = [spec.decide(p.read_bytes()) for p in photos]
    result: dict[str, Any] = {
        "photos": len(photos),
        "view_resize": spec.algorithm["view_resize"],
    }
    for name in filters:
        other = [Agent(folder, name).decide(p.read_bytes()) for p in photos]
        pairs = [(a, b) for a, b in zip(base, other, strict=True) if "state" in a]
        changed = sum(a["action"] != b["action"] for a, b in pairs)
        drift = max(float(np.abs(a["state"] - b["state"]).max()) for a, b in pairs)
        sizes = [
            (a["upload"][2], b["upload"][2])
            for a, b in pairs
            if "upload" in a and "upload" in b
        ]
        result[name] = {
            "choices_changed": changed,
            "largest_state_change": round(drift, 4),
            "bytes_ratio": round(
                sum(b for _, b in sizes) / sum(a for a, _ in sizes), 4
            ),
        }
        print(
            f"{name}: {changed} of {len(pairs)} choices change, state moves by up to "
            f"{drift:.4f}, uploads {result[name]['bytes_ratio']:.4f}x the bytes"
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agent", type=Path, help="a folder from `adacompress export`")
    parser.add_argument("photos", nargs="*", help="photos to decide for")
    parser.add_argument("--images", help="a folder of photos (searched recursively)")
    parser.add_argument(
        "--check", action="store_true", help="compare the card's reference vectors"
    )
    parser.add_argument(
        "--view-resize",
        choices=sorted(FILTERS),
        help="another filter for the network's view (default: the card's)",
    )
    parser.add_argument(
        "--compare-view-resize",
        metavar="LIST",
        help="filters to measure against the card's, e.g. bilinear,lanczos",
    )
    parser.add_argument("--json", help="write the comparison here")
    args = parser.parse_args(argv)
    if args.check:
        return check(Agent(args.agent, args.view_resize))
    photos = photos_of(args.photos, args.images)
    if args.compare_view_resize:
        result = compare(args.agent, photos, args.compare_view_resize.split(","))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return 0
    agent = Agent(args.agent, args.view_resize)
    for path in photos:
        decided = agent.decide(path.read_bytes())
        decided.pop("state", None)
        print(json.dumps({"photo": str(path), **decided}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
