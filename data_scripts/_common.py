"""Helpers shared by the data preparation scripts: one-line errors, checksums, downloads, manifests, decoding.

Not a public API: the scripts `prepare_omniglot.py` and `prepare_miniimagenet.py` import it from their folder.
The cache format itself (`save_cache`, `load_split`, ...) lives in the package, `sparse_maml.data`.
"""
import hashlib, sys, urllib.request
from pathlib import Path

try: import sparse_maml.data as smd
except ImportError:  # run from a checkout without `pip install -e .`: use the package next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import sparse_maml.data as smd

import torch, warnings
from tqdm import tqdm

# torchvision 0.29 deprecates torchvision.io's codecs in favour of TorchCodec, and warns at every call
warnings.filterwarnings('ignore', message='The image decoding and encoding capabilities of TorchVision', category=DeprecationWarning)


class PrepareError(Exception):
    "Bad input to a prepare script: reported as one line, without a traceback, and no cache is written."


def warn(msg: str): print(f'warning: {msg}', file=sys.stderr)


def progress(iterable=None, **kwargs):
    "A tqdm progress bar on stderr, shown only on a terminal."
    return tqdm(iterable, disable=None, leave=False, **kwargs)


def sha256_file(path: Path) -> str:
    "Hex sha256 of a file, read in 1 MiB chunks."
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''): h.update(chunk)
    return h.hexdigest()


def verify(path: Path, expected: str | None, note: str = '') -> str:
    "sha256 of `path`; a mismatch with `expected` is an error, an unknown expected value a warning showing the sha256."
    got = sha256_file(path)
    if expected is None:
        warn(f'no known sha256 for {path.name}; it has {got}{note}: compare it with a trusted copy')
    elif got != expected:
        raise PrepareError(f'{path}: wrong checksum: sha256 {got}, expected {expected} (corrupt or another file; '
                           'delete it and retry)')
    return got


def fetch(url: str, dest: Path, expected: str | None, note: str = '') -> Path:
    "Download `url` to `dest` (kept if already there and its checksum matches); verify; never leave a partial file."
    if dest.exists():
        try: verify(dest, expected, note); return dest
        except PrepareError: dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + '.part')
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, 'wb') as f:
            total = int(r.headers.get('Content-Length') or 0) or None
            with progress(total=total, unit='B', unit_scale=True, desc=dest.name) as bar:
                for chunk in iter(lambda: r.read(1 << 20), b''): f.write(chunk); bar.update(len(chunk))
        verify(part, expected, note)
        part.rename(dest)
    except OSError as e:
        raise PrepareError(f'cannot download {url}: {e}') from None
    finally:
        part.unlink(missing_ok=True)
    return dest


def folder_fingerprint(files: list[Path], root: Path) -> str:
    "Cheap identity of many files (relative path, size, mtime), for folders of images too big to hash each run."
    h = hashlib.sha256()
    for p in sorted(files):
        st = p.stat()
        h.update(f'{p.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n'.encode())
    return 'stat:' + h.hexdigest()


def up_to_date(name: str, data_dir, manifest: dict) -> bool:
    "Whether the cache of `name` was built from the same sources with the same options by this cache version."
    old = smd.read_manifest(name, data_dir)
    return (old is not None and old.get('version') == smd.CACHE_VERSION
            and all(old.get(k) == manifest.get(k) for k in ('sources', 'options'))
            and all((smd.cache_dir(name, data_dir) / f'{s}.pt').exists() for s in old.get('splits', {})))


def decode(data: bytes | torch.Tensor, name: str, mode: str) -> torch.Tensor:
    "Decode an encoded image (PNG, JPEG, ...) to uint8 [C, H, W]; `mode` 'GRAY' or 'RGB'; errors name the image."
    from torchvision.io import ImageReadMode, decode_image
    try:
        if isinstance(data, bytes): data = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return decode_image(data, mode=getattr(ImageReadMode, mode))
    except Exception as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise PrepareError(f'cannot decode image {name}: {msg}') from None


def resize(images: torch.Tensor, size: int, chunk: int = 1024, desc: str = 'resize') -> torch.Tensor:
    "Batched antialiased bilinear resize of uint8 [N, C, H, W] to [N, C, size, size] (torchvision.transforms.v2)."
    from torchvision.transforms.v2 import functional as F
    if images.shape[-2:] == (size, size): return images
    out = torch.empty(*images.shape[:2], size, size, dtype=torch.uint8)
    for i in progress(range(0, len(images), chunk), desc=desc):
        out[i:i + chunk] = F.resize(images[i:i + chunk], [size, size], antialias=True)
    return out


def print_summary(splits, folder: Path):
    for ds in splits:
        print(f'  {ds.split:5} {ds.n_classes:4} classes x {ds.class_index.shape[1]:3} images  {list(ds.images.shape[1:])}')
    print(f'cache written: {folder}')


def call_parse_dashed(func):
    "fastcore's `call_parse`, with this script's options spelled `--data-dir` (`--data_dir` keeps working); other parsers untouched."
    import fastcore.script as fs
    plain = fs.anno_parser
    def dashed(f, prog=None):
        p = plain(f, prog)
        for a in p._actions:
            names = [s.replace('_', '-') if s.startswith('--') else s for s in a.option_strings]
            for s in names: p._option_string_actions[s] = a
            a.option_strings = names
        return p
    cli = fs.call_parse(func)
    if func.__module__ != '__main__': return cli     # imported (tests): call it with arguments
    fs.anno_parser = dashed                          # run as the script: parse argv and run now, then restore
    try: return cli()
    finally: fs.anno_parser = plain


def run_cli(prepare, prog: str, **kwargs):
    "Call `prepare(**kwargs)`; bad input exits with one line `prog: error: ...` (exit status 1), no traceback."
    try: prepare(**kwargs)
    except PrepareError as e: raise SystemExit(f'{prog}: error: {e}') from None
    except KeyboardInterrupt: raise SystemExit(f'{prog}: interrupted; no cache was written') from None
