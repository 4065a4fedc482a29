#!/usr/bin/env python
"""Prepare Omniglot for sparse-maml: the official zips of PNGs -> a uint8 cache of 28x28 images, split by alphabet.

Splits (no alphabet is shared between train, val and test):
  small (images_background_small1.zip + images_background_small2.zip, the course default):
    train = all of small1: Balinese 24, Early_Aramaic 22, Greek 24, Korean 40, Latin 26 characters (136 classes)
    val   = Sanskrit from small2 (42 classes)
    test  = Japanese_(katakana) 47 + Tagalog 17 from small2 (64 classes)
    (small2's Greek and Latin are byte-identical copies of small1's and are not used.)
  full (images_background.zip + images_evaluation.zip, the standard split):
    test  = all 20 evaluation alphabets (659 classes)
    val   = Sanskrit, Japanese_(katakana), Tagalog from background (106 classes)
    train = the other 27 background alphabets (858 classes)
Every class has 20 drawings. Rotated classes are a load-time option: load_split('omniglot', 'train', rotations=True).

Usage (from the repository root):
  python data_scripts/prepare_omniglot.py --source ../shared/data/omniglot --data-dir data
  python data_scripts/prepare_omniglot.py                       # download the small zips (sha256 checked)
  python data_scripts/prepare_omniglot.py --subset full         # download the full background/evaluation zips
"""
import sys, zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (PrepareError, decode, fetch, print_summary, progress, resize, run_cli,
                     sha256_file, smd, up_to_date, call_parse_dashed, verify)
import torch
from fastcore.script import Param, store_true

URL = 'https://raw.githubusercontent.com/brendenlake/omniglot/master/python/{}'
SHA256 = {  # zip -> expected sha256 (None: not known here; the computed value is printed so you can compare)
    'images_background_small1.zip': 'f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4',
    'images_background_small2.zip': '3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f',
    'images_background.zip': None,
    'images_evaluation.zip': None,
}
HELD_OUT = ['Sanskrit', 'Japanese_(katakana)', 'Tagalog']  # never trained on, in either subset
SUBSETS = {  # split -> (zip, alphabets to take or None for all, alphabets to leave out); expected characters per zip
    'small': dict(splits={'train': ('images_background_small1.zip', None, []),
                          'val': ('images_background_small2.zip', ['Sanskrit'], []),
                          'test': ('images_background_small2.zip', ['Japanese_(katakana)', 'Tagalog'], [])},
                  characters={'images_background_small1.zip': 136, 'images_background_small2.zip': 156}),
    'full': dict(splits={'train': ('images_background.zip', None, HELD_OUT),
                         'val': ('images_background.zip', HELD_OUT, []),
                         'test': ('images_evaluation.zip', None, [])},
                 characters={'images_background.zip': 964, 'images_evaluation.zip': 659}),
}
N_DRAWERS, PNG_SIZE = 20, (105, 105)


def read_zip(path: Path) -> dict[str, dict[str, list[str]]]:
    "alphabet -> character -> sorted PNG member names, from a zip laid out as <top>/<alphabet>/<character>/<drawing>.png."
    try: z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e: raise PrepareError(f'{path} is not a readable zip file: {e}') from None
    tree = {}
    with z:
        for m in z.namelist():
            parts = m.split('/')
            if m.lower().endswith('.png') and len(parts) >= 4 and not parts[0].startswith('__MACOSX'):
                tree.setdefault(parts[-3], {}).setdefault(parts[-2], []).append(m)
    return {a: {c: sorted(ms) for c, ms in sorted(chars.items())} for a, chars in sorted(tree.items())}


def check_zip(name: str, tree: dict, expected_characters: int):
    n = sum(len(chars) for chars in tree.values())
    if n != expected_characters:
        raise PrepareError(f'wrong class count: {name} has {n} characters in {len(tree)} alphabets, '
                           f'expected {expected_characters}')
    for a, chars in tree.items():
        for c, ms in chars.items():
            if len(ms) != N_DRAWERS:
                raise PrepareError(f'wrong class count: {name}: {a}/{c} has {len(ms)} drawings, expected {N_DRAWERS}')


def select(name: str, tree: dict, take, leave_out) -> list[str]:
    missing = [a for a in (take or []) + leave_out if a not in tree]
    if missing: raise PrepareError(f'{name} has no alphabet {", ".join(missing)}')
    return [a for a in (take or tree) if a not in leave_out]


def load_split_from_zip(path: Path, tree: dict, alphabets: list[str], split: str, image_size: int) -> smd.FewShotDataset:
    "Decode the PNGs of `alphabets`, resize them in one batch, label characters in sorted (alphabet, character) order."
    classes = [(a, c) for a in sorted(alphabets) for c in tree[a]]
    images = torch.empty(len(classes) * N_DRAWERS, 1, *PNG_SIZE, dtype=torch.uint8)
    with zipfile.ZipFile(path) as z:
        members = [m for a, c in classes for m in tree[a][c]]
        for i, m in enumerate(progress(members, desc=f'{split}: decode')):
            img = decode(z.read(m), f'{path.name}:{m}', 'GRAY')
            if tuple(img.shape[1:]) != PNG_SIZE:
                raise PrepareError(f'wrong image shape: {path.name}:{m} is {img.shape[2]}x{img.shape[1]}, '
                                   f'expected {PNG_SIZE[1]}x{PNG_SIZE[0]}')
            images[i] = img
    return smd.FewShotDataset(resize(images, image_size, desc=f'{split}: resize'),
                              torch.arange(len(classes)).repeat_interleave(N_DRAWERS),
                              [f'{a}/{c}' for a, c in classes], (0.0,), (1.0,), 'omniglot', split)


def prepare(source: str | None = None, data_dir: str | None = None, subset: str = 'auto', image_size: int = 28,
            force: bool = False) -> Path:
    "Build (or confirm up to date) the Omniglot cache; raises PrepareError on bad input."
    data_dir = Path(data_dir).expanduser() if data_dir else smd.default_data_dir()
    if subset not in ('auto', 'small', 'full'): raise PrepareError(f"--subset must be auto, small or full, not {subset!r}")
    if source is not None:
        src = Path(source).expanduser()
        if not src.is_dir(): raise PrepareError(f'--source {src} is not a folder')
        if subset == 'auto':
            subset = 'full' if all((src / z).exists() for z in SUBSETS['full']['characters']) else 'small'
        zips = {z: src / z for z in SUBSETS[subset]['characters']}
        missing = [z for z, p in zips.items() if not p.is_file()]
        if missing:
            raise PrepareError(f'missing {", ".join(missing)} in {src} (expected images_background_small1.zip and '
                               'images_background_small2.zip, or images_background.zip and images_evaluation.zip)')
        sources = {z: verify(p, SHA256[z]) for z, p in zips.items()}
    else:
        subset = 'small' if subset == 'auto' else subset
        zips = {z: fetch(URL.format(z), data_dir / 'downloads' / 'omniglot' / z, SHA256[z]) for z in SUBSETS[subset]['characters']}
        sources = {z: sha256_file(p) for z, p in zips.items()}
    manifest = dict(sources=sources, options=dict(subset=subset, image_size=image_size))
    if not force and up_to_date('omniglot', data_dir, manifest):
        print(f'cache up to date: {smd.cache_dir("omniglot", data_dir)}')
        return smd.cache_dir('omniglot', data_dir)
    trees = {}
    for z, p in zips.items():
        trees[z] = read_zip(p)
        check_zip(z, trees[z], SUBSETS[subset]['characters'][z])
    splits, info = [], {}
    for split, (z, take, leave_out) in SUBSETS[subset]['splits'].items():
        alphabets = select(z, trees[z], take, leave_out)
        splits.append(load_split_from_zip(zips[z], trees[z], alphabets, split, image_size))
        info[split] = {a: len(trees[z][a]) for a in sorted(alphabets)}
    folder = smd.save_cache(splits, data_dir, dict(manifest, alphabets=info))
    print_summary(splits, folder)
    return folder


@call_parse_dashed  # --data-dir, --image-size, ...
def main(source: Param('folder holding the Omniglot zips (default: download them into <data-dir>/downloads/omniglot)', str) = None,
         data_dir: Param('cache root (default: $SPARSE_MAML_DATA, else ~/.cache/sparse-maml)', str) = None,
         subset: Param('small: the two 5-alphabet zips; full: images_background + images_evaluation; '
                       'auto: full if --source holds its zips, else small', str, choices=['auto', 'small', 'full']) = 'auto',
         image_size: Param('side of the square images in the cache', int) = 28,
         force: Param('rebuild even if the cache is up to date', store_true) = False):
    "Turn the Omniglot zips into sparse-maml's cache (train/val/test split by alphabet; see the module docstring)."
    run_cli(prepare, 'prepare_omniglot', source=source, data_dir=data_dir, subset=subset, image_size=image_size, force=force)

