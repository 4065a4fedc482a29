"""Tests of dataset preparation (sparse_maml.omniglot, .miniimagenet, the data_scripts/ wrappers) and verified caches.

Omniglot: the real minimal zips (../shared/data/omniglot) where present, and tiny synthetic zips in the layout of the
full background / evaluation sets. MiniImageNet: a tiny synthetic dataset (3 classes x 4 images per split, 84x84)
written in all four source formats, which must all give the same cache. Every kind of bad input must fail with a
one-line message and leave no cache (and no temporary folder) behind.
"""
import json, os, pickle, shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest
import torch
from torchvision.io import decode_image, encode_jpeg, encode_png, ImageReadMode
from torchvision.transforms.v2 import functional as F

REPO = Path(__file__).resolve().parents[1]
import sparse_maml.miniimagenet as pm
import sparse_maml.omniglot as po
from sparse_maml.data import CacheError, load_split, read_manifest, tiny_cache
from sparse_maml.prepare import PrepareError

pytestmark = pytest.mark.filterwarnings(
    'ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning')

OMNIGLOT = next((p for p in (REPO.parent / 'shared/data/omniglot', Path('/work/shared/data/omniglot'))
                 if (p / 'images_background_small1.zip').exists()), None)
needs_omniglot = pytest.mark.skipif(OMNIGLOT is None, reason='the Omniglot minimal zips are not here')


def no_cache(data_dir: Path, name: str):
    "Nothing of a cache of `name` (nor a temporary or old folder) exists under data_dir."
    return not data_dir.exists() or not [p for p in data_dir.iterdir() if name in p.name]


def run_scripts(*calls) -> list[subprocess.CompletedProcess]:
    "Run (script, *args) command lines at once (each pays for importing torch), from the repository root."
    env = dict(os.environ, OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, str(REPO / 'data_scripts' / script), *map(str, args)],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for script, *args in calls]
    outs = [p.communicate() for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, *o) for p, o in zip(procs, outs)]

# ---------------------------------------------------------------------------------------------------------
# Omniglot, real minimal zips

@needs_omniglot
def test_omniglot_small(tmp_path, capsys):
    folder = po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
    splits = {s: load_split('omniglot', s, tmp_path) for s in ('train', 'val', 'test')}
    assert [ds.n_classes for ds in splits.values()] == [136, 42, 64]
    assert all(ds.images.shape[1:] == (1, 28, 28) and ds.class_index.shape[1] == 20 for ds in splits.values())
    alphabets = {s: sorted({c.split('/')[0] for c in ds.class_names}) for s, ds in splits.items()}
    assert alphabets == {'train': ['Balinese', 'Early_Aramaic', 'Greek', 'Korean', 'Latin'], 'val': ['Sanskrit'],
                         'test': ['Japanese_(katakana)', 'Tagalog']}
    man = read_manifest('omniglot', tmp_path)
    assert man['sources'] == {z: po.SHA256[z] for z in ('images_background_small1.zip', 'images_background_small2.zip')}
    assert man['alphabets']['test'] == {'Japanese_(katakana)': 47, 'Tagalog': 17}
    # image 0 is the first drawing of Balinese/character01, resized with antialiasing
    with zipfile.ZipFile(OMNIGLOT / 'images_background_small1.zip') as z:
        png = z.read('images_background_small1/Balinese/character01/0108_01.png')
    raw = decode_image(torch.frombuffer(bytearray(png), dtype=torch.uint8), mode=ImageReadMode.GRAY)
    ref = F.resize(raw, [28, 28], antialias=True)
    assert torch.equal(splits['train'].images[0], ref) and splits['train'].class_names[0] == 'Balinese/character01'
    # idempotent: the second run changes nothing
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    capsys.readouterr()
    po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
    assert 'cache up to date' in capsys.readouterr().out
    assert stamps == {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['omniglot']


@needs_omniglot
def test_omniglot_wrong_checksum_keeps_old_cache(tmp_path):
    src, data = tmp_path / 'src', tmp_path / 'data'
    src.mkdir()
    for z in ('images_background_small1.zip', 'images_background_small2.zip'): shutil.copy(OMNIGLOT / z, src / z)
    po.prepare_omniglot(str(src), str(data))
    before = (data / 'omniglot' / 'train.pt').read_bytes()
    with open(src / 'images_background_small2.zip', 'ab') as f: f.write(b'\0')
    msg = 'images_background_small2.zip: wrong checksum: sha256 [0-9a-f]{64}, expected 3ccaa4'
    with pytest.raises(PrepareError, match=msg):
        po.prepare_omniglot(str(src), str(data), force=True)
    assert (data / 'omniglot' / 'train.pt').read_bytes() == before          # the old cache is untouched
    assert sorted(p.name for p in data.iterdir()) == ['omniglot']          # and nothing else was left


@needs_omniglot
def test_omniglot_missing_zip(tmp_path):
    (tmp_path / 'src').mkdir()
    shutil.copy(OMNIGLOT / 'images_background_small1.zip', tmp_path / 'src')
    with pytest.raises(PrepareError, match='missing images_background_small2.zip in'):
        po.prepare_omniglot(str(tmp_path / 'src'), str(tmp_path / 'data'))
    assert no_cache(tmp_path / 'data', 'omniglot')


@needs_omniglot
def test_omniglot_download(tmp_path, monkeypatch, capsys):
    "Without --source the zips are fetched (here from file:// URLs) into <data-dir>/downloads and checked."
    monkeypatch.setattr(po, 'URL', OMNIGLOT.as_uri() + '/{}')
    po.prepare_omniglot(None, str(tmp_path))
    assert (tmp_path / 'downloads/omniglot/images_background_small1.zip').exists()
    assert load_split('omniglot', 'val', tmp_path).n_classes == 42
    monkeypatch.setitem(po.SHA256, 'images_background_small1.zip', '0' * 64)  # a download that does not match
    (tmp_path / 'downloads/omniglot/images_background_small1.zip').unlink()
    with pytest.raises(PrepareError, match='wrong checksum'):
        po.prepare_omniglot(None, str(tmp_path), force=True)
    assert sorted(p.name for p in (tmp_path / 'downloads/omniglot').iterdir()) == ['images_background_small2.zip']


def test_omniglot_download_fails_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(po, 'URL', (tmp_path / 'nowhere').as_uri() + '/{}')
    with pytest.raises(PrepareError, match='cannot download file://'):
        po.prepare_omniglot(None, str(tmp_path / 'data'))
    assert no_cache(tmp_path / 'data', 'omniglot')
    assert list((tmp_path / 'data/downloads/omniglot').iterdir()) == []    # no partial download

# ---------------------------------------------------------------------------------------------------------
# Omniglot, synthetic zips in the layout of the full background / evaluation sets

BACKGROUND = ['Alpha', 'Beta', 'Sanskrit', 'Japanese_(katakana)', 'Tagalog']
EVALUATION = ['Gamma', 'Delta']


def png(seed: int, size=(105, 105)) -> bytes:
    g = torch.Generator().manual_seed(seed)
    return encode_png((torch.rand(1, *size, generator=g) > 0.5).to(torch.uint8) * 255).numpy().tobytes()


def omniglot_zip(path: Path, alphabets, n_chars=2, n_drawings=20, replace=None):
    "A zip laid out like the official ones; `replace` maps member names to other bytes (or None to drop them)."
    replace = replace or {}
    with zipfile.ZipFile(path, 'w') as z:
        for a, alphabet in enumerate(alphabets):
            for c in range(n_chars):
                for d in range(n_drawings):
                    name = f'{path.stem}/{alphabet}/character{c + 1:02d}/{a:02d}{c:02d}_{d + 1:02d}.png'
                    data = replace.get(name, png(1000 * a + 100 * c + d))
                    if data is not None: z.writestr(name, data)


@pytest.fixture
def full_omniglot(tmp_path, monkeypatch):
    monkeypatch.setitem(po.SUBSETS['full'], 'characters', {'images_background.zip': 10, 'images_evaluation.zip': 4})
    src = tmp_path / 'src'
    src.mkdir()
    omniglot_zip(src / 'images_evaluation.zip', EVALUATION)
    def make(**replace): omniglot_zip(src / 'images_background.zip', BACKGROUND, replace=replace); return src
    return make


def test_omniglot_full_layout(full_omniglot, tmp_path, capsys):
    src = full_omniglot()
    po.prepare_omniglot(str(src), str(tmp_path / 'data'))
    assert 'warning: no known sha256 for images_background.zip; it has' in capsys.readouterr().err
    splits = {s: load_split('omniglot', s, tmp_path / 'data') for s in ('train', 'val', 'test')}
    assert [ds.n_classes for ds in splits.values()] == [4, 6, 4]
    assert splits['train'].class_names == ['Alpha/character01', 'Alpha/character02', 'Beta/character01',
                                           'Beta/character02']
    assert {c.split('/')[0] for c in splits['val'].class_names} == {'Sanskrit', 'Japanese_(katakana)', 'Tagalog'}
    assert read_manifest('omniglot', tmp_path / 'data')['options'] == {'subset': 'full', 'image_size': 28}
    assert load_split('omniglot', 'train', tmp_path / 'data', rotations=True).n_classes == 16


def test_omniglot_corrupt_image(full_omniglot, tmp_path):
    bad = 'images_background/Beta/character02/0101_07.png'
    src = full_omniglot(**{bad: b'not a png at all'})
    with pytest.raises(PrepareError, match=f'cannot decode image images_background.zip:{bad}'):
        po.prepare_omniglot(str(src), str(tmp_path / 'data'))
    assert no_cache(tmp_path / 'data', 'omniglot')


def test_omniglot_wrong_class_counts(full_omniglot, tmp_path):
    src = full_omniglot(**{'images_background/Alpha/character02/0001_20.png': None})
    msg = 'wrong class count: images_background.zip: Alpha/character02 has 19 drawings, expected 20'
    with pytest.raises(PrepareError, match=msg):
        po.prepare_omniglot(str(src), str(tmp_path / 'data'))
    src = full_omniglot()
    omniglot_zip(src / 'images_evaluation.zip', EVALUATION, n_chars=1)
    with pytest.raises(PrepareError, match='images_evaluation.zip has 2 characters in 2 alphabets, expected 4'):
        po.prepare_omniglot(str(src), str(tmp_path / 'data'), subset='full')
    assert no_cache(tmp_path / 'data', 'omniglot')


def test_omniglot_wrong_image_shape(full_omniglot, tmp_path):
    bad = 'images_background/Tagalog/character01/0400_03.png'
    src = full_omniglot(**{bad: png(0, size=(100, 90))})
    msg = f'wrong image shape: images_background.zip:{bad} is 90x100, expected 105x105'
    with pytest.raises(PrepareError, match=msg):
        po.prepare_omniglot(str(src), str(tmp_path / 'data'))
    assert no_cache(tmp_path / 'data', 'omniglot')


def test_omniglot_not_a_zip(full_omniglot, tmp_path):
    src = full_omniglot()
    (src / 'images_evaluation.zip').write_bytes(b'garbage')
    with pytest.raises(PrepareError, match='images_evaluation.zip is not a readable zip file'):
        po.prepare_omniglot(str(src), str(tmp_path / 'data'))
    assert no_cache(tmp_path / 'data', 'omniglot')

# ---------------------------------------------------------------------------------------------------------
# MiniImageNet: one tiny synthetic dataset in all four formats

CLASSES = {'train': ['n00000003', 'n00000001', 'n00000002'], 'val': ['n00000004', 'n00000005', 'n00000006'],
           'test': ['n00000007', 'n00000008', 'n00000009']}
FOLDER = [3, 10, 25, 100, 101, 250, 1000, 1234]  # ImageNet file numbers of a synset folder (numeric != text order)
PICKS = [2, 3, 5, 7]                             # CSV numbers: positions (from 1) in the numerically sorted folder


def jpeg(seed: int, size=(84, 84)) -> bytes:
    g = torch.Generator().manual_seed(seed)
    img = (torch.rand(3, 1, 1, generator=g) * torch.linspace(0, 1, size[1])
           + torch.rand(3, size[0], 1, generator=g) * 0.5)
    return encode_jpeg((img.clamp(0, 1) * 255).to(torch.uint8), quality=90).numpy().tobytes()


def ravi(c: str, i: int) -> str: return f'{c}{i:08d}.jpg'


@pytest.fixture
def mini(tmp_path):
    "The synthetic dataset in every format; returns a dict of paths and the decoded pixels."
    root = tmp_path / 'mini'
    names = ('csv', 'jpeg_flat', 'jpeg_per_class', 'imagenet', 'imagenet_big')
    csvs, flat, per_class, raw, big = (root / d for d in names)
    for d in (csvs, flat / 'images', raw / 'train', big): d.mkdir(parents=True)
    pixels = {}
    for s, classes in CLASSES.items():
        rows = ''.join(f'{ravi(c, i)},{c}\n' for c in classes for i in PICKS)
        (csvs / f'{s}.csv').write_text('filename,label\n' + rows)
        for k, c in enumerate(classes):
            (raw / 'train' / c).mkdir()
            (big / c).mkdir()
            for j, number in enumerate(FOLDER):
                data = jpeg(100 * int(c[1:]) + j)
                (raw / 'train' / c / f'{c}_{number}.JPEG').write_bytes(data)
                (big / c / f'{c}_{number}.JPEG').write_bytes(jpeg(100 * int(c[1:]) + j, size=(120, 100)))
                if j + 1 in PICKS:
                    (flat / 'images' / ravi(c, j + 1)).write_bytes(data)
                    (per_class / s / c).mkdir(parents=True, exist_ok=True)
                    (per_class / s / c / ravi(c, j + 1)).write_bytes(data)
                    pixels[c, j + 1] = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    # pickle (learn2learn): classes stored in reverse order, class_dict lists indices in CSV order
    for s, classes in CLASSES.items():
        order = [(c, i) for c in reversed(classes) for i in PICKS]
        image_data = torch.stack([pixels[key] for key in order]).permute(0, 2, 3, 1).contiguous().numpy()
        class_dict = {c: [order.index((c, i)) for i in PICKS] for c in classes}
        with open(root / f'mini-imagenet-cache-{s}.pkl', 'wb') as f:
            pickle.dump({'image_data': image_data, 'class_dict': class_dict}, f)
    # hdf5 (Torchmeta): <root>/miniimagenet/{split}_data.hdf5 with group datasets, {split}_labels.json sorted names
    import h5py
    (root / 'miniimagenet').mkdir()
    for s, classes in CLASSES.items():
        with h5py.File(root / 'miniimagenet' / f'{s}_data.hdf5', 'w') as f:
            group = f.create_group('datasets')
            for c in classes:
                group.create_dataset(c, data=torch.stack([pixels[c, i] for i in PICKS]).permute(0, 2, 3, 1).numpy())
        (root / 'miniimagenet' / f'{s}_labels.json').write_text(json.dumps(sorted(classes)))
    pkl = root / 'pkl'
    pkl.mkdir()
    for s in CLASSES: (root / f'mini-imagenet-cache-{s}.pkl').rename(pkl / f'mini-imagenet-cache-{s}.pkl')
    return dict(root=root, csv=csvs, flat=flat, per_class=per_class, raw=raw, big=big, pkl=pkl, hdf5=root,
                pixels=pixels)


def cache_tensors(data_dir: Path) -> dict:
    out = {}
    for s in ('train', 'val', 'test'):
        ds = load_split('miniimagenet', s, data_dir)
        out[s] = (ds.images, ds.labels, ds.class_names, ds.mean, ds.std)
    return out


def assert_same(a: dict, b: dict):
    for s in a:
        assert torch.equal(a[s][0], b[s][0]) and torch.equal(a[s][1], b[s][1]) and a[s][2:] == b[s][2:], s


def test_mini_four_formats_same_cache(mini, tmp_path, capsys):
    caches = {}
    formats = [('flat', 'jpeg'), ('per_class', 'jpeg'), ('raw', 'imagenet'), ('pkl', 'pickle'), ('hdf5', 'hdf5')]
    for name, fmt in formats:
        pm.prepare_miniimagenet(str(mini[name]), str(mini['csv']), str(tmp_path / name), workers=2)
        assert read_manifest('miniimagenet', tmp_path / name)['options']['format'] == fmt, name
        caches[name] = cache_tensors(tmp_path / name)
    train = caches['flat']['train']
    assert train[0].shape == (12, 3, 84, 84) and train[2] == ['n00000001', 'n00000002', 'n00000003']
    assert torch.equal(train[1], torch.arange(3).repeat_interleave(4)) and train[3] == (0.485, 0.456, 0.406)
    assert torch.equal(train[0][4], mini['pixels']['n00000002', PICKS[0]])  # class 1 (sorted), first CSV image
    for name in caches: assert_same(caches['flat'], caches[name])
    # idempotent
    capsys.readouterr()
    pm.prepare_miniimagenet(str(mini['pkl']), str(mini['csv']), str(tmp_path / 'pkl'))
    assert 'cache up to date' in capsys.readouterr().out


def test_mini_imagenet_mapping_and_resize(mini, tmp_path):
    "Raw ImageNet files bigger than 84x84 are resized; CSV number i is the i-th file in numeric order."
    pm.prepare_miniimagenet(str(mini['big']), str(mini['csv']), str(tmp_path / 'd'), format='imagenet')
    ds = load_split('miniimagenet', 'val', tmp_path / 'd')
    assert ds.images.shape == (12, 3, 84, 84)
    number = FOLDER[PICKS[1] - 1]  # the second CSV image of n00000004 is file n00000004_25.JPEG
    raw = decode_image(str(mini['big'] / 'n00000004' / f'n00000004_{number}.JPEG'))
    assert raw.shape == (3, 120, 100)
    assert torch.equal(ds.images[1], F.resize(raw, [84, 84], antialias=True))


def test_mini_csvs_next_to_images(mini, tmp_path):
    for s in CLASSES: shutil.copy(mini['csv'] / f'{s}.csv', mini['flat'])
    pm.prepare_miniimagenet(str(mini['flat']), None, str(tmp_path / 'd'))
    assert load_split('miniimagenet', 'test', tmp_path / 'd').n_classes == 3


def test_mini_missing_images(mini, tmp_path):
    for c, i in [('n00000001', 2), ('n00000009', 7)]: (mini['flat'] / 'images' / ravi(c, i)).unlink()
    msg = r'2 images listed in the split CSVs are not in .*\(e\.g\. n0000000100000002\.jpg, n0000000900000007\.jpg\)'
    with pytest.raises(PrepareError, match=msg):
        pm.prepare_miniimagenet(str(mini['flat']), str(mini['csv']), str(tmp_path / 'd'))
    shutil.rmtree(mini['raw'] / 'train' / 'n00000005')
    msg = r'4 images listed .* \(e\.g\. n0000000500000002\.jpg \(#2; n00000005/ has 0 images\)'
    with pytest.raises(PrepareError, match=msg):
        pm.prepare_miniimagenet(str(mini['raw']), str(mini['csv']), str(tmp_path / 'd'))
    assert no_cache(tmp_path / 'd', 'miniimagenet')


def test_mini_corrupt_image(mini, tmp_path):
    (mini['per_class'] / 'test' / 'n00000008' / ravi('n00000008', 5)).write_bytes(b'\xff\xd8\xff garbage')
    with pytest.raises(PrepareError, match=r'cannot decode image .*n00000008/n0000000800000005\.jpg'):
        pm.prepare_miniimagenet(str(mini['per_class']), str(mini['csv']), str(tmp_path / 'd'), workers=2)
    assert no_cache(tmp_path / 'd', 'miniimagenet')


def pickled(path: Path, **change):
    with open(path, 'rb') as f: data = pickle.load(f)
    data.update(change)
    with open(path, 'wb') as f: pickle.dump(data, f)
    return data


def test_mini_pickle_wrong_shape(mini, tmp_path):
    small = torch.zeros(12, 32, 32, 3, dtype=torch.uint8).numpy()
    pickled(mini['pkl'] / 'mini-imagenet-cache-val.pkl', image_data=small)
    msg = (r'wrong image shape: mini-imagenet-cache-val.pkl image_data is uint8 \[12, 32, 32, 3\], '
           r'expected uint8 \[N, 84, 84, 3\]')
    with pytest.raises(PrepareError, match=msg):
        pm.prepare_miniimagenet(str(mini['pkl']), str(mini['csv']), str(tmp_path / 'd'))
    assert no_cache(tmp_path / 'd', 'miniimagenet')


def test_mini_pickle_wrong_class_counts(mini, tmp_path):
    path = mini['pkl'] / 'mini-imagenet-cache-test.pkl'
    with open(path, 'rb') as f: class_dict = pickle.load(f)['class_dict']
    pickled(path, class_dict=dict(class_dict, n00000008=class_dict['n00000008'][:3]))
    msg = 'wrong class counts: the test split in .*: class n00000008 has 3 images, test.csv lists 4'
    with pytest.raises(PrepareError, match=msg):
        pm.prepare_miniimagenet(str(mini['pkl']), str(mini['csv']), str(tmp_path / 'd'))
    del class_dict['n00000007']
    pickled(path, class_dict=class_dict)
    msg = r'wrong classes: .* has 2 classes, test.csv lists 3 \(missing: n00000007; not in the CSV: -\)'
    with pytest.raises(PrepareError, match=msg):
        pm.prepare_miniimagenet(str(mini['pkl']), str(mini['csv']), str(tmp_path / 'd'))
    assert no_cache(tmp_path / 'd', 'miniimagenet')


def test_mini_hdf5_errors(mini, tmp_path):
    labels = mini['hdf5'] / 'miniimagenet' / 'train_labels.json'
    labels.write_text(json.dumps(['n00000001', 'n00000002', 'n00000003', 'n00000099']))
    msg = 'wrong classes: train_data.hdf5 has no class n00000099 of train_labels.json'
    with pytest.raises(PrepareError, match=msg):
        pm.prepare_miniimagenet(str(mini['hdf5']), str(mini['csv']), str(tmp_path / 'd'))
    labels.unlink()
    with pytest.raises(PrepareError, match='missing .*train_labels.json'):
        pm.prepare_miniimagenet(str(mini['hdf5']), str(mini['csv']), str(tmp_path / 'd'), format='hdf5')
    assert no_cache(tmp_path / 'd', 'miniimagenet')


def test_mini_bad_split_files(mini, tmp_path):
    (mini['csv'] / 'val.csv').unlink()
    with pytest.raises(PrepareError, match='missing split file .*val.csv'):
        pm.prepare_miniimagenet(str(mini['flat']), str(mini['csv']), str(tmp_path / 'd'))
    (mini['csv'] / 'val.csv').write_text('filename,label\nn0000000400000002.jpg,n00000004\nimage.png,n00000004\n')
    with pytest.raises(PrepareError, match="val.csv line 3: 'image.png,n00000004' is not like"):
        pm.prepare_miniimagenet(str(mini['flat']), str(mini['csv']), str(tmp_path / 'd'))
    rows = ''.join(f'{ravi(c, i)},{c}\n' for c in CLASSES['val'] for i in PICKS[:3 if c == 'n00000005' else 4])
    (mini['csv'] / 'val.csv').write_text('filename,label\n' + rows)
    with pytest.raises(PrepareError, match='wrong class counts: val.csv lists 3 to 4 images per class'):
        pm.prepare_miniimagenet(str(mini['flat']), str(mini['csv']), str(tmp_path / 'd'))
    assert no_cache(tmp_path / 'd', 'miniimagenet')


def test_mini_unrecognised_source(tmp_path, mini):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(PrepareError, match='no MiniImageNet data in .*empty: expected Ravi-Larochelle JPEGs'):
        pm.prepare_miniimagenet(str(tmp_path / 'empty'), str(mini['csv']), str(tmp_path / 'd'))
    with pytest.raises(PrepareError, match='--source is required'):
        pm.prepare_miniimagenet(None, str(mini['csv']), str(tmp_path / 'd'))
    assert no_cache(tmp_path / 'd', 'miniimagenet')

# ---------------------------------------------------------------------------------------------------------
# The command lines and the training-side error

def test_cli_help():
    for out in run_scripts(('prepare_omniglot.py', '--help'), ('prepare_miniimagenet.py', '--help')):
        assert out.returncode == 0 and '--data-dir' in out.stdout and '--force' in out.stdout, out.stderr


def test_cli_errors_are_one_line(tmp_path):
    calls = [('prepare_omniglot.py', '--source', tmp_path / 'nowhere'),
             ('prepare_miniimagenet.py', '--source', tmp_path, '--split-dir', tmp_path)]
    for (script, *_), out in zip(calls, run_scripts(*(c + ('--data-dir', tmp_path / 'data') for c in calls))):
        assert out.returncode == 1 and 'Traceback' not in out.stderr, out.stderr
        lines = [l for l in out.stderr.splitlines() if not l.startswith('warning:')]
        assert len(lines) == 1 and lines[0].startswith(script.replace('.py', ': error: ')), out.stderr
        assert no_cache(tmp_path / 'data', script[8:-3])


def test_missing_cache_names_the_command(tmp_path):
    with pytest.raises(CacheError, match=f'build it with: sparse-maml prepare omniglot --data-dir {tmp_path}$'):
        load_split('omniglot', 'train', tmp_path)

# ---------------------------------------------------------------------------------------------------------
# Verified caches: a damaged file is named with the command that rebuilds it, and preparation rebuilds it

def truncate(path: Path, n: int = 10_000): path.write_bytes(path.read_bytes()[:n])


def flip_byte(path: Path):
    "Change one byte in the middle of the file: same size, and torch.load does not notice (no CRC check)."
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(data)


def test_truncated_cache_is_one_line_error(tmp_path):
    folder = tiny_cache(tmp_path)
    size = read_manifest('omniglot', tmp_path)['files']['test.pt']['size']
    truncate(folder / 'test.pt')
    before = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
    with pytest.raises(CacheError) as e:
        load_split('omniglot', 'test', tmp_path)
    assert str(e.value) == (f'damaged omniglot cache: {folder}/test.pt has 10000 bytes, the manifest says {size}; '
                            f'rebuild it with: sparse-maml prepare omniglot --data-dir {tmp_path} --force')
    assert isinstance(e.value, FileNotFoundError)          # callers catching a missing cache catch this too
    assert before == sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())
    assert load_split('omniglot', 'train', tmp_path).n_classes == 12   # the intact splits still load


def test_changed_byte_is_caught_by_the_checksum(tmp_path):
    folder = tiny_cache(tmp_path)
    flip_byte(folder / 'val.pt')
    msg = (rf"{folder}/val.pt has changed \(its sha256 is not the manifest's\); "
           rf"rebuild it with: sparse-maml prepare omniglot --data-dir {tmp_path} --force$")
    with pytest.raises(CacheError, match=msg):
        load_split('omniglot', 'val', tmp_path)
    wrong = load_split('omniglot', 'val', tmp_path, checksum=False)     # sizes only: loads, with a wrong pixel
    assert not torch.equal(wrong.images, load_split('omniglot', 'val', tiny_cache(tmp_path / 'ref').parent).images)


def test_train_on_a_damaged_cache_fails_in_one_line(tmp_path, capsys):
    "`sparse-maml train` on a truncated test split: one line naming the file and the --force command, no run written."
    from sparse_maml.cli import main
    truncate(tiny_cache(tmp_path / 'data') / 'test.pt')
    sets = ['hidden=8', 'n_inner_steps=1', 'epochs=1', 'iters_per_epoch=1', 'n_val_episodes=5', 'n_test_episodes=5',
            'eval_batch=5', 'rotations=false', f'data_dir={tmp_path / "data"}']
    options = [a for s in sets for a in ('--set', s)]
    code = main(['train', '--device', 'cpu', '--quiet', '--run-dir', str(tmp_path / 'run'), *options])
    err = capsys.readouterr().err
    assert code != 0 and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    assert f'{tmp_path}/data/omniglot/test.pt has 10000 bytes' in err and err.rstrip().endswith('--force'), err
    assert not (tmp_path / 'run').exists()


@needs_omniglot
def test_prepare_rebuilds_a_damaged_cache(tmp_path, capsys):
    folder = po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
    good = (folder / 'test.pt').read_bytes()
    for damage, problem in [(truncate, f'{folder}/test.pt has 10000 bytes'),
                            (flip_byte, f"{folder}/test.pt has changed (its sha256 is not the manifest's)"),
                            (Path.unlink, f'{folder}/test.pt is missing')]:
        damage(folder / 'test.pt')
        capsys.readouterr()
        po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
        out = capsys.readouterr().out
        assert out.startswith(f'rebuilding: damaged omniglot cache: {problem}') and 'up to date' not in out, out
        assert (folder / 'test.pt').read_bytes() == good and load_split('omniglot', 'test', tmp_path).n_classes == 64
    po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
    assert capsys.readouterr().out == f'cache up to date: {folder}\n'


@needs_omniglot
def test_prepare_rebuilds_a_version_1_cache(tmp_path, capsys):
    "A cache from before sizes and checksums were recorded cannot be verified: it is rebuilt, not trusted."
    folder = po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
    man = read_manifest('omniglot', tmp_path)
    del man['files']
    (folder / 'manifest.json').write_text(json.dumps(dict(man, version=1)))
    with pytest.raises(CacheError, match='has version 1, this code reads version 2; rebuild it with: .* --force$'):
        load_split('omniglot', 'train', tmp_path)
    capsys.readouterr()
    po.prepare_omniglot(str(OMNIGLOT), str(tmp_path))
    assert capsys.readouterr().out.startswith(f'rebuilding: the omniglot cache in {folder} has version 1')
    assert read_manifest('omniglot', tmp_path)['version'] == 2


def test_scripts_run_the_package_code():
    "The data_scripts are thin wrappers: no preparation code of their own."
    for script in ('prepare_omniglot.py', 'prepare_miniimagenet.py'):
        code = [l for l in (REPO / 'data_scripts' / script).read_text().split('"""')[2].splitlines() if l.strip()]
        assert len(code) <= 8 and any('from sparse_maml.prepare_cli import' in l for l in code), script
    scripts = sorted(p.name for p in (REPO / 'data_scripts').glob('*.py'))
    assert scripts == ['prepare_miniimagenet.py', 'prepare_omniglot.py']
