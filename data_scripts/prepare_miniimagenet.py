#!/usr/bin/env python
"""Prepare MiniImageNet (Ravi & Larochelle split: 64/16/20 classes x 600 images, 84x84 RGB) for sparse-maml.

The split is defined by train.csv, val.csv, test.csv (`filename,label`, e.g. `n0153282900000005.jpg,n01532829`),
from --split-dir, else from the --source folder if it holds them, else downloaded from the authors' repository.
--source is one of four formats (detected, or forced with --format):
  jpeg      the Ravi-Larochelle JPEGs (n0153282900000005.jpg), flat (e.g. images/) or in per-class folders;
            any file named in a CSV is decoded, and resized to 84x84 if it is not already.
  imagenet  raw ILSVRC-2012 training folders <source>[/train]/nXXXXXXXX/nXXXXXXXX_NNNN.JPEG. Mapping: the CSV name
            n01532829 + 00000005 is the 5th file (counting from 1) of folder n01532829 when its files are sorted
            by the number NNNN (as a number); the image is resized to 84x84 (no crop; bilinear, antialias).
  pickle    mini-imagenet-cache-{train,val,test}.pkl (as used by learn2learn): `image_data` uint8 [N, 84, 84, 3],
            `class_dict` class -> image indices. Unpickling runs code: only use pickles you trust.
  hdf5      Torchmeta's {train,val,test}_data.hdf5 (group `datasets`: class name -> uint8 [600, 84, 84, 3])
            with {split}_labels.json (the class names), e.g. <source>/miniimagenet/.
All four give the same cache: classes sorted by name, images in source order (CSV order for the folder formats,
class_dict / HDF5 order for the others), normalised on the fly with ImageNet's mean and std.

Usage (from the repository root):
  python data_scripts/prepare_miniimagenet.py --source ~/data/mini-imagenet --data-dir data
"""
import csv, json, os, pickle, re, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (PrepareError, decode, fetch, folder_fingerprint, print_summary, progress, resize, run_cli,
                     sha256_file, smd, up_to_date, call_parse_dashed, warn)
import torch
from fastcore.script import Param, store_true

CSV_URL = 'https://raw.githubusercontent.com/twitter-research/meta-learning-lstm/master/data/miniImagenet/{}'
CSV_SHA256 = {'train.csv': None, 'val.csv': None, 'test.csv': None}  # not verifiable from where this was written
REFERENCE_CSV_SHA256 = {  # the copies shipped with the course (../shared/data/miniimagenet_split), for comparison
    'train.csv': '498519cd8e49ce97ed26a4a3638966698ae41ab35e9c68538319fc9b46ba7d2f',
    'val.csv': '5658a59921ca027ee76af92949869c5d6f41d77592ff3b18db325a9d10c893b9',
    'test.csv': '2b7cfa78342995761a572a8158e539bc4e0a80f9bbd7d00c1e17a460fbbb93fa',
}
RAVI_NAME = re.compile(r'^(n\d{8})(\d{8})\.jpg$')            # n01532829 + 00000005 .jpg
IMAGENET_NAME = re.compile(r'^(n\d{8})_(\d+)\.jpe?g$', re.I)  # n01532829_1234.JPEG
SIZE = 84  # side of the images in the array formats
NO_DATA = ('expected Ravi-Larochelle JPEGs (n0153282900000005.jpg), ImageNet folders (n01532829/n01532829_123.JPEG), '
           'mini-imagenet-cache-{train,val,test}.pkl or {train,val,test}_data.hdf5')


def read_csvs(split_dir: Path) -> dict[str, dict[str, list[str]]]:
    "split -> class -> file names, in CSV order; checks names, labels, equal counts, disjoint classes."
    splits = {}
    for split in smd.SPLITS:
        path = split_dir / f'{split}.csv'
        if not path.is_file(): raise PrepareError(f'missing split file {path}')
        with open(path, newline='') as f: rows = list(csv.reader(f))
        if not rows or [c.strip() for c in rows[0]] != ['filename', 'label']:
            raise PrepareError(f'{path}: the first line must be "filename,label"')
        classes, seen = {}, set()
        for i, row in enumerate(rows[1:], 2):
            m = RAVI_NAME.match(row[0]) if len(row) == 2 else None
            if not m or m.group(1) != row[1] or row[0] in seen:
                raise PrepareError(f'{path} line {i}: {",".join(row)!r} is not like "n0153282900000005.jpg,n01532829" '
                                   'or repeats a file')
            seen.add(row[0]); classes.setdefault(row[1], []).append(row[0])
        counts = {len(v) for v in classes.values()}
        if len(counts) != 1:
            raise PrepareError(f'wrong class counts: {path.name} lists {min(counts)} to {max(counts)} images per class')
        splits[split] = classes
    shared = set(splits['train']) & set(splits['val']) | set(splits['train']) & set(splits['test']) | set(splits['val']) & set(splits['test'])
    if shared: raise PrepareError(f'the split files share classes: {", ".join(sorted(shared)[:3])}')
    return splits


def find_csvs(split_dir, source: Path, data_dir: Path) -> tuple[Path, dict[str, str]]:
    "Locate (or download) the split CSVs; return their sha256s (warning when they are not the standard files)."
    names = list(REFERENCE_CSV_SHA256)
    if split_dir is None and all((source / n).is_file() for n in names): split_dir = source
    if split_dir is None:
        split_dir = data_dir / 'downloads' / 'miniimagenet_split'
        for n in names: fetch(CSV_URL.format(n), split_dir / n, CSV_SHA256[n], f" (the course's copy has {REFERENCE_CSV_SHA256[n]})")
    split_dir = Path(split_dir).expanduser()
    shas = {n: sha256_file(split_dir / n) if (split_dir / n).is_file() else None for n in names}
    for n, sha in shas.items():
        if sha is not None and sha != REFERENCE_CSV_SHA256[n]:
            warn(f'{split_dir / n} is not the standard Ravi-Larochelle {n} (sha256 {sha})')
    return split_dir, shas


def detect(source: Path, fmt: str, first_class: str) -> tuple[str, Path]:
    "The format of `source` and the folder that holds it."
    if source.is_file():
        kind = 'pickle' if source.suffix == '.pkl' else 'hdf5' if source.suffix in ('.hdf5', '.h5') else None
        if kind is None or fmt not in ('auto', kind): raise PrepareError(f'--source {source}: {NO_DATA}')
        return kind, source.parent
    for d in (source, source / 'miniimagenet'):
        if fmt in ('auto', 'pickle') and (d / 'mini-imagenet-cache-train.pkl').exists(): return 'pickle', d
        if fmt in ('auto', 'hdf5') and (d / 'train_data.hdf5').exists(): return 'hdf5', d
    for d in (source, source / 'train'):
        if fmt in ('auto', 'imagenet') and (d / first_class).is_dir() and any(
                IMAGENET_NAME.match(f) for f in os.listdir(d / first_class)): return 'imagenet', d
    if fmt in ('pickle', 'hdf5', 'imagenet'): raise PrepareError(f'no {fmt} MiniImageNet data in {source}: {NO_DATA}')
    return 'jpeg', source


def jpeg_paths(root: Path, csvs) -> dict[str, dict[str, list[Path]]]:
    "Find every CSV file name anywhere under `root` (flat images/ folder, per-class or per-split folders)."
    index = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if RAVI_NAME.match(f): index.setdefault(f, Path(dirpath) / f)
    if not index: raise PrepareError(f'no MiniImageNet data in {root}: {NO_DATA}')
    missing = [f for classes in csvs.values() for files in classes.values() for f in files if f not in index]
    if missing: raise PrepareError(f'{len(missing)} images listed in the split CSVs are not in {root} (e.g. {", ".join(missing[:3])})')
    return {s: {c: [index[f] for f in files] for c, files in classes.items()} for s, classes in csvs.items()}


def imagenet_paths(root: Path, csvs) -> dict[str, dict[str, list[Path]]]:
    "CSV number i of synset s -> the i-th file of root/s sorted by the number in s_NNNN.JPEG (the Ravi-Larochelle images)."
    out, missing = {}, []
    for s, classes in csvs.items():
        out[s] = {}
        for c, files in classes.items():
            d = root / c
            found = [f for f in os.listdir(d) if IMAGENET_NAME.match(f)] if d.is_dir() else []
            found.sort(key=lambda f: int(IMAGENET_NAME.match(f).group(2)))
            numbers = [int(RAVI_NAME.match(f).group(2)) for f in files]
            missing += [f'{f} (#{i}; {c}/ has {len(found)} images)' for f, i in zip(files, numbers) if not 1 <= i <= len(found)]
            out[s][c] = [d / found[i - 1] for i in numbers if 1 <= i <= len(found)]
    if missing: raise PrepareError(f'{len(missing)} images listed in the split CSVs are not in {root} (e.g. {", ".join(missing[:3])})')
    return out


def decode_files(paths: list[Path], image_size: int, workers: int, desc: str) -> torch.Tensor:
    "Read and decode JPEGs (torchvision.io) in threads, resizing those that are not image_size x image_size."
    from torchvision.io import read_file
    from torchvision.transforms.v2 import functional as F
    out = torch.empty(len(paths), 3, image_size, image_size, dtype=torch.uint8)
    def work(i):
        try: data = read_file(str(paths[i]))
        except Exception as e: raise PrepareError(f'cannot read image {paths[i]}: {e}') from None
        img = decode(data, str(paths[i]), 'RGB')
        out[i] = img if img.shape[1:] == (image_size, image_size) else F.resize(img, [image_size, image_size], antialias=True)
    ex = ThreadPoolExecutor(workers)
    try:
        for _ in progress(ex.map(work, range(len(paths))), total=len(paths), desc=desc): pass
    finally: ex.shutdown(cancel_futures=True)  # on an error, do not decode the rest
    return out


def check_array(images, name: str):
    if getattr(images, 'dtype', None) != 'uint8' or images.ndim != 4 or tuple(images.shape[1:]) != (SIZE, SIZE, 3):
        raise PrepareError(f'wrong image shape: {name} is {getattr(images, "dtype", type(images).__name__)} '
                           f'{list(getattr(images, "shape", []))}, expected uint8 [N, {SIZE}, {SIZE}, 3]')


def pickle_arrays(root: Path, split: str) -> dict:
    "class -> uint8 [n, 3, 84, 84] from mini-imagenet-cache-{split}.pkl, in class_dict order."
    path = root / f'mini-imagenet-cache-{split}.pkl'
    if not path.is_file(): raise PrepareError(f'missing {path}')
    try:
        with open(path, 'rb') as f:
            try: data = pickle.load(f)
            except UnicodeDecodeError: f.seek(0); data = pickle.load(f, encoding='latin1')  # pickled by Python 2
        images, class_dict = data['image_data'], data['class_dict']
    except Exception as e: raise PrepareError(f'cannot read {path}: {type(e).__name__}: {e}') from None
    check_array(images, f'{path.name} image_data')
    return {c: torch.from_numpy(images[list(idx)]).permute(0, 3, 1, 2) for c, idx in class_dict.items()}


def hdf5_arrays(root: Path, split: str) -> dict:
    "class -> uint8 [n, 3, 84, 84] from Torchmeta's {split}_data.hdf5 and {split}_labels.json."
    import h5py
    data, labels = root / f'{split}_data.hdf5', root / f'{split}_labels.json'
    for p in (data, labels):
        if not p.is_file(): raise PrepareError(f'missing {p}')
    try:
        names = json.loads(labels.read_text())
        with h5py.File(data, 'r') as f:
            group = f['datasets']
            absent = [n for n in names if n not in group]
            if absent: raise PrepareError(f'wrong classes: {data.name} has no class {", ".join(absent[:3])} of {labels.name}')
            arrays = {n: group[n][()] for n in names}
    except PrepareError: raise
    except Exception as e: raise PrepareError(f'cannot read {data}: {type(e).__name__}: {e}') from None
    for n, a in arrays.items(): check_array(a, f'{data.name} datasets/{n}')
    return {n: torch.from_numpy(a).permute(0, 3, 1, 2) for n, a in arrays.items()}


def check_classes(split: str, found: dict[str, int], listed: dict[str, list], where: str):
    "The classes and per-class counts of an array format must be those of the split CSV."
    missing, extra = sorted(set(listed) - set(found)), sorted(set(found) - set(listed))
    if missing or extra:
        raise PrepareError(f'wrong classes: {where} has {len(found)} classes, {split}.csv lists {len(listed)} '
                           f'(missing: {", ".join(missing[:3]) or "-"}; not in the CSV: {", ".join(extra[:3]) or "-"})')
    bad = [c for c in sorted(listed) if found[c] != len(listed[c])]
    if bad: raise PrepareError(f'wrong class counts: {where}: class {bad[0]} has {found[bad[0]]} images, {split}.csv '
                               f'lists {len(listed[bad[0]])} ({len(bad)} classes differ)')


def dataset(split: str, per_class: dict[str, torch.Tensor]) -> smd.FewShotDataset:
    "Classes sorted by name, stacked into one uint8 tensor."
    names = sorted(per_class)
    images = torch.empty(sum(len(per_class[c]) for c in names), *per_class[names[0]].shape[1:], dtype=torch.uint8)
    i = 0
    for c in names: images[i:i + len(per_class[c])] = per_class[c]; i += len(per_class[c])
    labels = torch.cat([torch.full((len(per_class[c]),), k) for k, c in enumerate(names)])
    return smd.FewShotDataset(images, labels, names, smd.IMAGENET_MEAN, smd.IMAGENET_STD, 'miniimagenet', split)


def prepare(source: str | None = None, split_dir: str | None = None, data_dir: str | None = None, format: str = 'auto',
            image_size: int = SIZE, workers: int = 0, force: bool = False) -> Path:
    "Build (or confirm up to date) the MiniImageNet cache; raises PrepareError on bad input."
    if source is None: raise PrepareError(f'--source is required (no official download of the images exists): {NO_DATA}')
    src, data_dir = Path(source).expanduser(), Path(data_dir).expanduser() if data_dir else smd.default_data_dir()
    if not src.exists(): raise PrepareError(f'--source {src} does not exist')
    if format not in ('auto', 'jpeg', 'imagenet', 'pickle', 'hdf5'): raise PrepareError(f'unknown --format {format!r}')
    split_dir, csv_shas = find_csvs(split_dir, src if src.is_dir() else src.parent, data_dir)
    csvs = read_csvs(split_dir)
    fmt, root = detect(src, format, next(iter(csvs['train'])))
    if fmt in ('jpeg', 'imagenet'):
        paths = (jpeg_paths if fmt == 'jpeg' else imagenet_paths)(root, csvs)
        sources = {'images': folder_fingerprint([p for cl in paths.values() for ps in cl.values() for p in ps], root)}
    else:
        files = ([f'mini-imagenet-cache-{s}.pkl' for s in smd.SPLITS] if fmt == 'pickle' else
                 [f'{s}_{k}' for s in smd.SPLITS for k in ('data.hdf5', 'labels.json')])
        for f in files:
            if not (root / f).is_file(): raise PrepareError(f'missing {root / f}')
        sources = {f: sha256_file(root / f) for f in progress(files, desc='checksums')}
    manifest = dict(sources=dict(sources, **csv_shas), options=dict(format=fmt, image_size=image_size))
    if not force and up_to_date('miniimagenet', data_dir, manifest):
        print(f'cache up to date: {smd.cache_dir("miniimagenet", data_dir)}')
        return smd.cache_dir('miniimagenet', data_dir)
    print(f'reading {fmt} from {root}')
    splits = []
    for split in smd.SPLITS:
        if fmt in ('jpeg', 'imagenet'):
            classes = sorted(csvs[split])
            flat = decode_files([p for c in classes for p in paths[split][c]], image_size, workers or min(8, os.cpu_count() or 1), split)
            n = len(csvs[split][classes[0]])
            per_class = {c: flat[k * n:(k + 1) * n] for k, c in enumerate(classes)}
        else:
            per_class = (pickle_arrays if fmt == 'pickle' else hdf5_arrays)(root, split)
            check_classes(split, {c: len(v) for c, v in per_class.items()}, csvs[split], f'the {split} split in {root}')
            if image_size != SIZE: per_class = {c: resize(v, image_size) for c, v in per_class.items()}
        splits.append(dataset(split, per_class))
    folder = smd.save_cache(splits, data_dir, manifest)
    print_summary(splits, folder)
    return folder


@call_parse_dashed  # --data-dir, --image-size, ...
def main(source: Param('the MiniImageNet files: a folder, or one .pkl / .hdf5 file of the set', str) = None,
         split_dir: Param('folder with train.csv, val.csv, test.csv (default: --source if it has them, else download)', str) = None,
         data_dir: Param('cache root (default: $SPARSE_MAML_DATA, else ~/.cache/sparse-maml)', str) = None,
         format: Param('jpeg: Ravi-Larochelle n0153282900000005.jpg files; imagenet: raw ILSVRC-2012 train folders '
                       'nXXXXXXXX/nXXXXXXXX_NNNN.JPEG; pickle: mini-imagenet-cache-{split}.pkl; hdf5: Torchmeta '
                       '{split}_data.hdf5 + {split}_labels.json; auto: detect', str,
                       choices=['auto', 'jpeg', 'imagenet', 'pickle', 'hdf5']) = 'auto',
         image_size: Param('side of the square images in the cache', int) = SIZE,
         workers: Param('threads decoding JPEGs (0: up to 8, one per core)', int) = 0,
         force: Param('rebuild even if the cache is up to date', store_true) = False):
    ("Turn MiniImageNet (Ravi-Larochelle JPEGs, raw ImageNet folders, the learn2learn pickles or Torchmeta's HDF5) "
     "into sparse-maml's cache; see the top of this file for the formats and the ImageNet file mapping.")
    run_cli(prepare, 'prepare_miniimagenet', source=source, split_dir=split_dir, data_dir=data_dir, format=format,
            image_size=image_size, workers=workers, force=force)
