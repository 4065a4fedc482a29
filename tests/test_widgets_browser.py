"""Chapter 10 (explore) opens in JupyterLab, as a browser shows it.

A JupyterLab server (no token, a free port, throw-away config/runtime/workspace folders) serves the repository;
headless Chromium opens `nbs/10_explore.ipynb` in it and dumps the DOM after the page has settled. The check: the
notebook's title, its subtitle and the prose of each section are rendered, the static pictures of the widgets are
shown as images, and JupyterLab reported no error opening the file. (The widgets themselves are built and checked
without a browser in the notebook: `explore(run_dir)` and the pure functions it draws with.)
"""
import json, os, re, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
NB = REPO/'nbs'/'10_explore.ipynb'

def _find_chromium():
    "`$CHROMIUM`, else Debian's chromium, else a Chrome (GitHub's Ubuntu runners have google-chrome)."
    for n in [os.environ.get('CHROMIUM', ''), 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']:
        p = shutil.which(n) if n else None
        if p: return p
    return None

CHROMIUM = _find_chromium()
# the browser runs with its own allocator (make preloads jemalloc for the torch commands and their children)
BROWSER_ENV = {k: v for k, v in os.environ.items() if k not in ('LD_PRELOAD', 'MALLOC_CONF')}
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason='chromium is not installed (Debian: apt-get install -y chromium); '
                             'the headless-browser check of chapter 10 in JupyterLab is skipped')

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _wait_for(url: str, proc, timeout: float = 90) -> None:
    "Poll `url` until it answers 200; fail with the server's log if it dies or never answers."
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f'jupyter lab exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}')
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.5)
    pytest.fail(f'jupyter lab did not answer {url} within {timeout} s')

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "Base URL of a JupyterLab server rooted at the repository (stopped, with its kernels, afterwards)."
    tmp = tmp_path_factory.mktemp('lab')
    port = _free_port()
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(tmp/'config'), 'JUPYTER_RUNTIME_DIR': str(tmp/'runtime'),
           'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', f'--port={port}', '--ip=127.0.0.1',
           '--ServerApp.port_retries=0', "--ServerApp.token=", "--ServerApp.password=", f'--ServerApp.root_dir={REPO}',
           f'--LabApp.workspaces_dir={tmp/"workspaces"}', f'--FileCheckpoints.checkpoint_dir={tmp/"checkpoints"}',
           '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f'http://127.0.0.1:{port}'
        _wait_for(f'{base}/api/status', proc)
        yield base
    finally:
        proc.terminate()
        try: proc.wait(timeout=20)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()

def _chromium_dom(url: str, profile: Path, budget_ms: int = 20000) -> str:
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--disable-dev-shm-usage', f'--user-data-dir={profile}', f'--virtual-time-budget={budget_ms}',
             '--window-size=1280,4000']
    r = subprocess.run([CHROMIUM, *flags, '--dump-dom', url],
                       env=BROWSER_ENV, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout

def _notebook_text():
    "The title, the subtitle and the first sentence of every markdown cell that starts a section ('## ...')."
    cells = json.loads(NB.read_text(encoding='utf-8'))['cells']
    md = [''.join(c['source']) for c in cells if c['cell_type'] == 'markdown']
    title = re.search(r'^# (.+)$', md[0], re.M).group(1)
    subtitle = re.search(r'^> (.+)$', md[0], re.M).group(1)
    sections = [re.match(r'## (.+)', m).group(1).strip() for m in md if m.startswith('## ')]
    return title, subtitle, sections

def test_explore_renders_in_jupyterlab(lab, tmp_path):
    "JupyterLab shows chapter 10: title, subtitle, every section heading and the three widget pictures; no load error."
    assert NB.exists(), 'nbs/10_explore.ipynb is missing'
    title, subtitle, sections = _notebook_text()
    dom = _chromium_dom(f'{lab}/lab/tree/nbs/10_explore.ipynb', tmp_path/'profile')
    body = re.sub(r'<(script|style)\b.*?</\1>', '', dom, flags=re.S)
    assert re.search(r'class="[^"]*\bjp-Notebook\b', body), \
        f'JupyterLab did not open a notebook panel (DOM starts: {dom[:500]!r})'
    dialogs = re.findall(r'class="[^"]*\bjp-Dialog\b[^"]*"', body)
    assert not dialogs and 'File Load Error' not in body, f'JupyterLab showed a dialog opening the notebook: {dialogs}'
    text = re.sub(r'<[^>]+>', ' ', body)
    text = re.sub(r'\s+', ' ', text.replace('&gt;', '>').replace('&amp;', '&'))
    h1_html = re.findall(r'<h1\b[^>]*>(.*?)</h1>', body, flags=re.S)
    h1 = [re.sub(r'<[^>]+>', '', h).strip().rstrip('¶').strip() for h in h1_html]
    assert title in h1, f'title {title!r} is not rendered as a heading (h1: {h1})'
    assert subtitle[:60] in text, 'the subtitle is not rendered'
    missing = [s for s in sections if s not in text]
    assert not missing, f'section headings not rendered: {missing}'
    pngs = re.findall(r'<img\b[^>]*\bsrc="(data:image/png|blob:)', body)
    assert len(pngs) >= 3, f'expected the 3 widget pictures as images, found {len(pngs)}'
