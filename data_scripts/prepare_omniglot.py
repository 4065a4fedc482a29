#!/usr/bin/env python
"""Prepare Omniglot for sparse-maml: the official zips of PNGs -> a uint8 cache of 28x28 images, split by alphabet.

A thin wrapper: the code is the package's (`sparse_maml.omniglot`, chapter 05b); with the package installed the same
command is `sparse-maml prepare omniglot [options]`.

Splits (no alphabet is shared between train, val and test):
  small (images_background_small1.zip + images_background_small2.zip, the course default):
    train = all of small1: Balinese 24, Early_Aramaic 22, Greek 24, Korean 40, Latin 26 characters (136 classes)
    val   = Sanskrit from small2 (42 classes)
    test  = Japanese_(katakana) 47 + Tagalog 17 from small2 (64 classes)
  full (images_background.zip + images_evaluation.zip, the standard split):
    test  = all 20 evaluation alphabets (659 classes)
    val   = Sanskrit, Japanese_(katakana), Tagalog from background (106 classes)
    train = the other 27 background alphabets (858 classes)
A damaged cache (a file whose size or sha256 differs from the manifest's) is rebuilt.

Usage (from the repository root):
  python data_scripts/prepare_omniglot.py --source ../shared/data/omniglot --data-dir data
  python data_scripts/prepare_omniglot.py                       # download the small zips (sha256 checked)
  python data_scripts/prepare_omniglot.py --subset full         # download the full background/evaluation zips
"""
import sys
from pathlib import Path

try: import sparse_maml  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the package next to this folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sparse_maml.prepare import run_script
from sparse_maml.prepare_cli import omniglot_cmd

if __name__ == '__main__': run_script(omniglot_cmd, 'prepare_omniglot')
