#!/usr/bin/env python
"""Prepare MiniImageNet (Ravi & Larochelle split: 64/16/20 classes x 600 images, 84x84 RGB) for sparse-maml.

A thin wrapper: the code is the package's (`sparse_maml.miniimagenet`, chapter 05c); with the package installed the
same command is `sparse-maml prepare miniimagenet --source PATH [options]`.

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
All four give the same cache. A damaged cache (a file whose size or sha256 differs from the manifest's) is rebuilt.

Usage (from the repository root):
  python data_scripts/prepare_miniimagenet.py --source ~/data/mini-imagenet --data-dir data
"""
import sys
from pathlib import Path

try: import sparse_maml  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the package next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sparse_maml.prepare import run_script
from sparse_maml.prepare_cli import miniimagenet_cmd

if __name__ == '__main__': run_script(miniimagenet_cmd, 'prepare_miniimagenet')
