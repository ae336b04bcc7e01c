"""Regenerate the sample photos in assets/examples/ from scikit-image's bundled data.

Every source file ships inside the installed ``skimage`` package (``skimage/data/``), so nothing
is downloaded; its SHA-256 is checked against the value recorded below (the same value as
scikit-image's own data registry) so the provenance in LICENSES.md stays true. Each photo is
converted to sRGB, scaled so its longest side is at most 640 px (aspect ratio
kept) and saved as JPEG quality 90 without metadata.

    python assets/make_examples.py            # write assets/examples/*.jpg
    python assets/make_examples.py --check    # only verify the sources, write nothing
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import skimage
import skimage.data
from PIL import Image, ImageCms

LONGEST_SIDE = 640
JPEG_QUALITY = 90
OUT_DIR = Path(__file__).resolve().parent / "examples"

# output name -> (file inside skimage/data/, skimage.data function, SHA-256 of that file).
# Only images whose licence scikit-image states in the function's docstring are used
# (stereo_motorcycle, for one, states none and is left out).
SOURCES: dict[str, tuple[str, str, str]] = {
    "chelsea.jpg": ("chelsea.png", "chelsea", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
    "coffee.jpg": ("coffee.png", "coffee", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
    "astronaut.jpg": ("astronaut.png", "astronaut", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
    "rocket.jpg": ("rocket.jpg", "rocket", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
    "hubble_deep_field.jpg": (
        "hubble_deep_field.jpg",
        "hubble_deep_field",
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    ),
    "camera.jpg": ("camera.png", "camera", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
}


def bundled_file(name: str) -> Path:
    """A file shipped inside the installed skimage package; never fetched from the network."""
    path = Path(skimage.data.__file__).resolve().parent / name
    if not path.is_file():
        sys.exit(f"{path} is not in this scikit-image install ({skimage.__version__}); refusing to download it.")
    return path


def verified(name: str, sha256: str) -> Path:
    path = bundled_file(name)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != sha256:
        sys.exit(f"{path}: SHA-256 {actual} differs from the recorded {sha256}; update LICENSES.md first.")
    return path


def to_srgb(im: Image.Image) -> Image.Image:
    """RGB pixels in sRGB. rocket.jpg, for one, is tagged Adobe RGB (1998)."""
    rgb = im.convert("RGB")
    icc = im.info.get("icc_profile")
    if not icc:
        return rgb
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if "sRGB" in ImageCms.getProfileDescription(profile):
        return rgb
    return ImageCms.profileToProfile(rgb, profile, ImageCms.createProfile("sRGB"), outputMode="RGB")


def shrink(im: Image.Image) -> Image.Image:
    scale = LONGEST_SIDE / max(im.size)
    if scale >= 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the sources only")
    args = parser.parse_args(argv)

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for out_name, (file_name, function, sha256) in SOURCES.items():
        source = verified(file_name, sha256)
        if args.check:
            print(f"ok  {source.name}  (skimage.data.{function})")
            continue
        with Image.open(source) as im:
            # Gray stays gray (one JPEG channel); everything else becomes plain sRGB without
            # metadata, so browsers and models see the same colours.
            picture = shrink(im.convert("L") if im.mode in ("L", "I;16", "I") else to_srgb(im))
        target = OUT_DIR / out_name
        picture.save(target, "JPEG", quality=JPEG_QUALITY, optimize=True)
        print(f"{target.relative_to(OUT_DIR.parent.parent)}  {picture.width}×{picture.height}  "
              f"from skimage/data/{file_name} (skimage.data.{function}, scikit-image {skimage.__version__})")


if __name__ == "__main__":
    main()
