#!/usr/bin/python3
"""Image-decoding fixtures for tests/test_images.cpp, written at test time: PNG files of
every colour type and bit depth (written here byte by byte, with colour chunks that a
reader must ignore: gAMA, cHRM, sRGB, iCCP; plain and Adam7-interlaced) and JPEG files
written by Pillow (subsamplings, grayscale, an embedded ICC profile, an EXIF orientation),
each with the array Pillow decodes it to, the values researchers' loaders
(`Image.open(f).convert("RGB")`) hand to a network. Files with transparency are listed as
refused. resize/ holds images with Pillow's bicubic resize of them (see
write_resize_fixtures).

  manifest.json   [{"file": ..., "expect": "....npy"} | {"file": ..., "refused": "..."}]

16-bit grayscale: Pillow opens it as mode "I" and convert("RGB") saturates at 255; the
expected array is the stored value's high byte (Pillow's rule for 16-bit RGB) instead.

usage: /usr/bin/python3 tests/python/make_image_fixtures.py OUT_DIR
"""

import io
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(samples, bit_depth):
    """samples: [h, w, c] integers -> filter-0 scanlines, MSB first, big-endian 16-bit."""
    out = b""
    for row in samples:
        flat = row.reshape(-1)
        if bit_depth == 16:
            data = flat.astype(">u2").tobytes()
        elif bit_depth == 8:
            data = flat.astype(np.uint8).tobytes()
        else:
            per = 8 // bit_depth
            padded = np.zeros(-(-flat.size // per) * per, np.uint8)
            padded[: flat.size] = flat
            grouped = padded.reshape(-1, per)
            data = bytes(int(sum(int(v) << (8 - bit_depth * (i + 1)) for i, v in enumerate(g))) for g in grouped)
        out += b"\x00" + data
    return out


def write_png(path, samples, color_type, bit_depth, palette=None, trns=None, extra=(), interlace=False):
    h, w = samples.shape[:2]
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += pack_rows(sub, bit_depth)
    else:
        raw = pack_rows(samples, bit_depth)
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    for kind, data in extra:
        body += chunk(kind, data)
    if palette is not None:
        body += chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        body += chunk(b"tRNS", trns)
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + body)


def colour_chunks(rng, kind):
    """Ancillary chunks that a colour-managing reader would act on."""
    if kind == "gamma":  # linear-light file gamma, and odd chromaticities
        return [(b"gAMA", struct.pack(">I", 100000)),
                (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))]
    if kind == "srgb":
        return [(b"sRGB", b"\x00"), (b"gAMA", struct.pack(">I", 45455))]
    if kind == "iccp":  # a profile-shaped blob: a reader must not apply (or need) it
        profile = bytes(rng.integers(0, 256, 300, dtype=np.uint8))
        return [(b"iCCP", b"scanner\x00\x00" + zlib.compress(profile)), (b"gAMA", struct.pack(">I", 220000))]
    return []


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(11)
    manifest = []

    def expect(name, array):
        np.save(os.path.join(out, name + ".npy"), np.ascontiguousarray(array, dtype=np.uint8))
        manifest.append({"file": name, "expect": name + ".npy"})

    def pillow(name):
        with Image.open(os.path.join(out, name)) as im:
            if im.mode in ("I", "I;16", "I;16B"):
                v = np.array(im).astype(np.int64) >> 8
                return np.repeat(v[:, :, None], 3, axis=2)
            return np.array(im.convert("RGB"))

    h, w = 13, 11  # odd sizes: partial bytes at the ends of packed rows, partial Adam7 blocks
    variants = [("plain", False, "none"), ("gamma", False, "gamma"), ("srgb", True, "srgb"), ("iccp", True, "iccp")]
    for tag, interlace, chunks in variants:
        for bits in (1, 2, 4, 8, 16):
            s = rng.integers(0, 2 ** bits, size=(h, w, 1))
            name = "gray%d_%s.png" % (bits, tag)
            write_png(os.path.join(out, name), s, 0, bits, extra=colour_chunks(rng, chunks), interlace=interlace)
            expect(name, pillow(name))
        for bits in (8, 16):
            s = rng.integers(0, 2 ** bits, size=(h, w, 3))
            name = "rgb%d_%s.png" % (bits, tag)
            write_png(os.path.join(out, name), s, 2, bits, extra=colour_chunks(rng, chunks), interlace=interlace)
            expect(name, pillow(name))
        for bits in (1, 2, 4, 8):
            entries = 2 ** bits
            palette = rng.integers(0, 256, size=(entries, 3))
            s = rng.integers(0, entries, size=(h, w, 1))
            name = "palette%d_%s.png" % (bits, tag)
            write_png(os.path.join(out, name), s, 3, bits, palette=palette, extra=colour_chunks(rng, chunks),
                      interlace=interlace)
            expect(name, pillow(name))

    # The field report: 16-bit files holding 257 k decode to k.
    k = np.array([0, 32, 64, 128, 192, 255])
    ramp = np.tile((257 * k)[None, :, None], (2, 1, 1))
    write_png(os.path.join(out, "ramp_gray16.png"), ramp, 0, 16)
    write_png(os.path.join(out, "ramp_rgb16.png"), np.repeat(ramp, 3, axis=2), 2, 16,
              extra=colour_chunks(rng, "gamma"))
    for name in ("ramp_gray16.png", "ramp_rgb16.png"):
        expect(name, np.repeat(np.tile(k[None, :, None], (2, 1, 1)), 3, axis=2))
    assert np.array_equal(pillow("ramp_rgb16.png")[0, :, 0], k)

    # Transparency is refused: alpha channels and tRNS chunks of every kind.
    for ct, bits in ((4, 8), (4, 16), (6, 8), (6, 16)):
        name = "alpha_ct%d_%d.png" % (ct, bits)
        write_png(os.path.join(out, name), rng.integers(0, 2 ** bits, size=(h, w, CHANNELS[ct])), ct, bits)
        manifest.append({"file": name, "refused": "alpha channel"})
    write_png(os.path.join(out, "trns_gray8.png"), rng.integers(0, 256, size=(h, w, 1)), 0, 8, trns=b"\x00\x07")
    write_png(os.path.join(out, "trns_rgb8.png"), rng.integers(0, 256, size=(h, w, 3)), 2, 8,
              trns=b"\x00\x07\x00\x08\x00\x09")
    write_png(os.path.join(out, "trns_palette4.png"), rng.integers(0, 16, size=(h, w, 1)), 3, 4,
              palette=rng.integers(0, 256, size=(16, 3)), trns=b"\x00\x80")
    for name in ("trns_gray8.png", "trns_rgb8.png", "trns_palette4.png"):
        manifest.append({"file": name, "refused": "transparency"})

    # JPEG, written by Pillow (libjpeg-turbo, as sit-eval's reader): decoded exactly alike.
    smooth = np.clip(rng.normal(0, 1, (21, 19, 3)).cumsum(0).cumsum(1) * 9 + 128, 0, 255).astype(np.uint8)
    icc = b"\x00" * 128  # a profile blob in APP2: must not be applied
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90": Image.open does not apply it, nor does sit-eval
    for name, kwargs, img in (
            ("q75_420.jpg", {"quality": 75, "subsampling": 2}, Image.fromarray(smooth)),
            ("q90_422.jpg", {"quality": 90, "subsampling": 1}, Image.fromarray(smooth)),
            ("q95_444_icc_exif.jpg", {"quality": 95, "subsampling": 0, "icc_profile": icc, "exif": exif.tobytes()},
             Image.fromarray(smooth)),
            ("gray_q80.jpg", {"quality": 80}, Image.fromarray(smooth[:, :, 1])),
            ("progressive.jpg", {"quality": 85, "progressive": True}, Image.fromarray(smooth))):
        img.save(os.path.join(out, name), "JPEG", **kwargs)
        expect(name, pillow(name))

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("wrote %d image fixtures to %s" % (len(manifest), out))
    write_resize_fixtures(os.path.join(out, "resize"), rng)


# (width, height) -> (width, height), as Image.resize takes them: up and down, odd sizes,
# the sizes DINOv2 (224) and CLIP (336) inputs come from, and the spec's 8 -> 3.
RESIZE_PAIRS = [((8, 8), (3, 3)), ((256, 256), (224, 224)), ((512, 512), (224, 224)),
                ((64, 64), (224, 224)), ((512, 512), (336, 336)), ((256, 256), (336, 336)),
                ((300, 200), (299, 299)), ((53, 37), (70, 11)), ((9, 5), (2, 17)),
                ((40, 40), (40, 23))]


def write_resize_fixtures(out, rng):
    """Random RGB images and 0/255 checkerboards with Pillow's BICUBIC resize of them (uint8,
    and per channel in mode F), for the byte-exact resize test.

      resize/manifest.json  [{"input": .npy, "pil": .npy, "pil_f": .npy, "size": [w, h]}]
    """
    os.makedirs(out, exist_ok=True)
    entries = []
    cases = [(("random", rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)), (ow, oh))
             for (w, h), (ow, oh) in RESIZE_PAIRS]
    board = ((np.indices((48, 48)).sum(0) % 2) * 255).astype(np.uint8)
    board = np.repeat(board[:, :, None], 3, axis=2)
    cases += [(("checkerboard", board), (17, 17)), (("checkerboard", board), (101, 77))]
    for i, ((kind, image), (ow, oh)) in enumerate(cases):
        name = "%02d_%s_%dx%d_to_%dx%d" % (i, kind, image.shape[1], image.shape[0], ow, oh)
        np.save(os.path.join(out, name + "_in.npy"), image)
        np.save(os.path.join(out, name + "_pil.npy"),
                np.array(Image.fromarray(image).resize((ow, oh), Image.BICUBIC)))
        f = np.stack([np.array(Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
                               .resize((ow, oh), Image.BICUBIC)) for c in range(3)], axis=2)
        np.save(os.path.join(out, name + "_pil_f.npy"), f.astype(np.float32))
        entries.append({"input": name + "_in.npy", "pil": name + "_pil.npy",
                        "pil_f": name + "_pil_f.npy", "size": [ow, oh]})
    # Pillow's BOX filter (ADM's halving) and ADM's center_crop_arr at odd sizes: no
    # halving, one halving (1100 x 700 -> 550 x 350), two (2100 x 1030), a short side
    # already at the size, and a long side at x.5 (125 * 50/100 = 62.5: round half to even
    # gives 62, not 63)
    for i, ((w, h), (ow, oh)) in enumerate([((601, 450), (300, 225)), ((37, 23), (18, 11))]):
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        name = "box_%02d_%dx%d_to_%dx%d" % (i, w, h, ow, oh)
        np.save(os.path.join(out, name + "_in.npy"), image)
        np.save(os.path.join(out, name + "_pil.npy"),
                np.array(Image.fromarray(image).resize((ow, oh), Image.BOX)))
        entries.append({"input": name + "_in.npy", "box": name + "_pil.npy", "size": [ow, oh]})
    for i, ((w, h), size) in enumerate([((600, 450), 256), ((1100, 700), 256), ((2100, 1030), 256),
                                         ((300, 256), 256), ((125, 100), 50), ((67, 81), 32)]):
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        name = "crop_%02d_%dx%d_to_%d" % (i, w, h, size)
        np.save(os.path.join(out, name + "_in.npy"), image)
        np.save(os.path.join(out, name + "_adm.npy"), center_crop_arr(Image.fromarray(image), size))
        entries.append({"input": name + "_in.npy", "adm_crop": name + "_adm.npy", "crop": size})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(entries, f, indent=1)
    print("wrote %d resize fixtures to %s" % (len(entries), out))


def center_crop_arr(pil_image, image_size):
    """ADM's guided_diffusion/image_datasets.py center_crop_arr, as metrics_modern.md 1.3
    describes it (written here from that description)."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    top, left = (arr.shape[0] - image_size) // 2, (arr.shape[1] - image_size) // 2
    return arr[top:top + image_size, left:left + image_size]


if __name__ == "__main__":
    main()
