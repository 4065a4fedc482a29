"""The README is made from nbs/index.ipynb, and `make docs` renders a site that works offline.

The site test builds into a temporary folder (no dependence on earlier builds) and opens chapter pages
in headless Chromium at 1280 px wide: equations typeset by the bundled MathJax (`\\mathbb{1}` double-struck, its
font loaded offline), plots shown, `#| hide` cells absent, exported code shown, code lines of 120 characters
without horizontal scrolling.
"""
import html, json, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO/'tools'))
import build_docs as bd
import make_readme as mr

def _find_chromium():
    "`$CHROMIUM`, else Debian's chromium, else a Chrome (GitHub's Ubuntu runners have google-chrome)."
    names = [os.environ.get('CHROMIUM', ''), 'chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']
    for n in names:
        p = shutil.which(n) if n else None
        if p: return p
    return None

CHROMIUM = _find_chromium()
# the browser runs with its own allocator (make preloads jemalloc for the torch commands and their children)
BROWSER_ENV = {k: v for k, v in os.environ.items() if k not in ('LD_PRELOAD', 'MALLOC_CONF')}

# ---------------------------------------------------------------------------------------------------------
# README

def test_readme_up_to_date():
    "README.md is exactly what tools/make_readme.py makes from nbs/index.ipynb."
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)/'README.md'
        fresh.write_text(mr.readme_text(), encoding='utf-8')
        assert (REPO/'README.md').read_text(encoding='utf-8') == fresh.read_text(encoding='utf-8'), \
            'README.md is stale: regenerate it with `.venv/bin/python tools/make_readme.py`'

def test_index_links_to_notebooks_that_exist():
    "Links from the index to chapters point at notebooks in nbs/ (README.md turns them into nbs/... links)."
    md = '\n'.join(''.join(c['source']) for c in json.loads((REPO/'nbs/index.ipynb').read_text())['cells']
                   if c['cell_type'] == 'markdown')
    links = re.findall(r'\]\(([^)#\s:]+\.ipynb)', md)
    assert [l for l in links if not (REPO/'nbs'/l).exists()] == []

def test_readme_markdown():
    "Code, text outputs and markdown outputs become markdown; images and hidden inputs do not."
    nb = {'cells': [
        {'cell_type': 'markdown', 'metadata': {},
         'source': 'See [ch 1](01_maml.ipynb) and [web](https://x.org/a.ipynb).'},
        {'cell_type': 'code', 'metadata': {}, 'source': '1+1', 'outputs': [
            {'output_type': 'execute_result', 'data': {'text/plain': '2'}, 'metadata': {}}]},
        {'cell_type': 'code', 'metadata': {'tags': ['remove-input']}, 'source': 'plot()', 'outputs': [
            {'output_type': 'display_data', 'data': {'image/png': 'iVBOR', 'text/plain': '<Figure>'}, 'metadata': {}},
            {'output_type': 'stream', 'name': 'stdout', 'text': '\x1b[31mred\x1b[0m\n'}]}]}
    md = mr.notebook_markdown(nb)
    assert md == ('See [ch 1](nbs/01_maml.ipynb) and [web](https://x.org/a.ipynb).\n\n'
                  '```python\n1+1\n```\n\n```\n2\n```\n\n```\nred\n```\n')

# ---------------------------------------------------------------------------------------------------------
# The adapter from nbdev's processed notebooks to MyST-NB

def _code(src, outputs=()): return {'cell_type': 'code', 'metadata': {}, 'source': src, 'outputs': list(outputs)}

def test_split_directives():
    dirs, body = bd.split_directives('#| echo: false\n#|output: asis\n#| hide\nshow_doc(f)\n#| not a directive')
    assert dirs == {'echo': 'false', 'output': 'asis', 'hide': ''} and body == 'show_doc(f)\n#| not a directive'

def test_adapt_show_doc_and_directives():
    md_out = {'output_type': 'execute_result', 'metadata': {},
              'data': {'text/markdown': ['---\n', '\n', '### f\n', '\n', '```python\n', '\n', 'def f(x)\n', '\n',
                                         '```\n', '\n', '*Doc $x$.*'],
                       'text/plain': 'def f(x)'}}
    cells = bd.adapt_cell(_code('#| echo: false\n#| output: asis\nshow_doc(f)', [md_out]))
    assert cells == [{'cell_type': 'markdown', 'metadata': {},
                      'source': '<span id="sym-f"></span>\n\n### f\n\n```python\ndef f(x)\n```\n\n*Doc $x$.*'}]
    out = {'output_type': 'stream', 'name': 'stdout', 'text': 'hi\n'}
    assert bd.adapt_cell(_code('#| include: false\nprint("hi")', [out])) == []
    (c,) = bd.adapt_cell(_code('#| echo: false\nprint("hi")', [out]))
    assert c['metadata']['tags'] == ['remove-input'] and c['source'] == 'print("hi")' and c['outputs'] == [out]
    (c,) = bd.adapt_cell(_code('#| output: false\nprint("hi")', [out]))
    assert c['metadata']['tags'] == ['remove-output']
    assert bd.adapt_cell(_code('#| echo: false\nx = 1')) == []          # nothing left to show
    widget = {'output_type': 'display_data', 'metadata': {},
              'data': {bd.WIDGET_MIME: {'model_id': 'a'}, 'text/plain': 'IntSlider()'}}
    (c,) = bd.adapt_cell(_code('w', [widget]))
    assert c['outputs'][0]['data'] == {'text/markdown': bd.WIDGET_NOTE}

def test_show_doc_star_args():
    "show_doc's `args:VAR_POSITIONAL` / `kw:VAR_KEYWORD` are shown as `*args` / `**kw`."
    sig = ['### f\n', '```python\n', 'def f(\n', '    x, args:VAR_POSITIONAL, fields_:VAR_KEYWORD\n', '):\n', '```']
    md_out = {'output_type': 'execute_result', 'metadata': {}, 'data': {'text/markdown': sig, 'text/plain': 'f'}}
    (c,) = bd.adapt_cell(_code('#| echo: false\n#| output: asis\nshow_doc(f)', [md_out]))
    assert '    x, *args, **fields_\n' in c['source'] and 'VAR_' not in c['source']
    assert bd.star_args('launch(fn, world:int, args:VAR_POSITIONAL)') == 'launch(fn, world:int, *args)'

def test_exported_source_kept():
    "The site's nbdev processing keeps `#| export` cells (directive line gone, tagged), drops `#| hide` ones."
    from execnb.nbio import dict2nb
    from nbdev.process import NBProcessor
    from nbdev.processors import rm_export, add_show_docs, clean_show_doc
    nb = dict2nb({'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5, 'cells': [
        _code('#| default_exp m'), _code('#| export\ndef f(x): return x'), _code('#| hide\nsecret = 1'), _code('1+1')]})
    NBProcessor(nb=nb, procs=[bd.rm_hidden, bd.tag_export]).process()
    assert [c.source for c in nb.cells] == ['def f(x): return x', '1+1']     # cells without source are dropped
    assert nb.cells[0].metadata['tags'] == [bd.EXPORT_TAG] and 'tags' not in nb.cells[1].metadata
    (c,) = bd.adapt_cell(dict(nb.cells[0]))
    assert c['source'] == 'def f(x): return x' and c['metadata']['tags'] == [bd.EXPORT_TAG]
    procs = bd.site_filter().base_procs()         # nbdev's processors otherwise unchanged
    assert rm_export not in procs and bd.rm_hidden in procs and {add_show_docs, clean_show_doc} <= set(procs)

def test_table_pipes():
    "A `|` in inline code of a table row is escaped; rows markdown-it would cut are reported."
    md = ('| command | what |\n|---|---|\n| `prepare omniglot|miniimagenet` | data |\n| `a\\|b` | ok |\n\n'
          '`x|y` outside a table\n\n```\n| a | b |\n|---|---|\n| `in|fence` |\n```')
    assert bd.broken_table_rows(md) == ['| `prepare omniglot|miniimagenet` | data |']
    fixed = bd.escape_table_pipes(md)
    assert bd.broken_table_rows(fixed) == []
    assert '| `prepare omniglot\\|miniimagenet` | data |' in fixed
    assert '`x|y` outside' in fixed and '`in|fence`' in fixed             # not in a table, in a fence: unchanged
    assert bd.broken_table_rows('| a | b |\n|:-|-:|\n| 1 | 2 | 3 |') == ['| 1 | 2 | 3 |']    # cells dropped
    from markdown_it import MarkdownIt
    html = MarkdownIt('commonmark').enable('table').render(fixed)
    assert '<code>prepare omniglot|miniimagenet</code></td>' in html and '<td>data</td>' in html

def test_repeated_show_doc_dropped():
    "The notebook's own show_doc (the last of a symbol's) is kept, nbdev's added one (after the export cell) dropped."
    docs = [{'cell_type': 'markdown', 'metadata': {}, 'source': f'<span id="sym-{n}"></span>\n\n### {n}\n{sig}'}
            for n, sig in (('f', 'def f(*args)'), ('g', 'def g()'), ('f', 'def f(m)'))]
    assert bd.drop_repeated_docs(docs) == docs[1:]

def test_adapt_front_matter_links_and_ids():
    nb = {'metadata': {'widgets': {}}, 'cells': [
        {'cell_type': 'raw', 'metadata': {},
         'source': '---\ndescription: One line\noutput-file: maml.html\ntitle: MAML\n\n---\n\n'},
        {'cell_type': 'markdown', 'metadata': {},
         'source': 'Uses [`sgd_step`](https://h.io/sparse-maml/maml.html#sgd_step), '
                   '[`Learner.evaluate`](https://h.io/sparse-maml/learners.html#learner.evaluate) '
                   'and [`gone`](https://h.io/sparse-maml/gone.html#gone).'}]}
    pages = {'maml.html': '01_maml.ipynb', 'learners.html': '06_learners.ipynb'}
    out = bd.adapt_notebook(nb, '01_maml', 'https://h.io/sparse-maml', pages)
    code = '<code class="docutils literal notranslate"><span class="pre">{}</span></code>'
    link = '<a class="reference internal nbdev-link" href="{}">' + code + '</a>'
    assert [c['source'] for c in out['cells']] == [
        '# MAML\n\n> One line',
        f"Uses {link.format('01_maml.html#sym-sgd-step', 'sgd_step')}, "
        f"{link.format('06_learners.html#sym-learner-evaluate', 'Learner.evaluate')} and `gone`."]
    assert [c['id'] for c in out['cells']] == ['01_maml-0', '01_maml-1']
    assert 'widgets' not in out['metadata'] and out['nbformat_minor'] == 5

def test_toc_follows_nbs():
    names = ['index.ipynb', '01_maml.ipynb', '02_lr.ipynb', '10_explore.ipynb']
    assert bd.book_toc(names) == {'format': 'jb-book', 'root': 'index',
                                  'chapters': [{'file': '01_maml'}, {'file': '02_lr'}, {'file': '10_explore'}]}
    nbs = bd.list_notebooks()
    assert nbs[0].name == 'index.ipynb' and [p.name for p in nbs[1:]] == sorted(p.name for p in nbs[1:])

# ---------------------------------------------------------------------------------------------------------
# The built site

def _cells(p: Path): return json.loads(p.read_text(encoding='utf-8'))['cells']
def _src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']
def _join(x): return ''.join(x) if isinstance(x, list) else str(x)
def _out_text(c): return '\n'.join(_join(o.get('text', '')) + ''.join(_join(v) for v in o.get('data', {}).values())
                                   for o in c.get('outputs', []))

def page_text(page_html: str) -> str:
    "What a reader sees: the text of the page without tags, scripts and styles."
    body = re.sub(r'<(script|style)\b.*?</\1>', '', page_html, flags=re.S | re.I)
    return html.unescape(re.sub(r'<[^>]+>', '', body))
def _hidden(c): return c['cell_type'] == 'code' and re.match(r'\s*#\s*\|\s*hide\s*$', _src(c).split('\n', 1)[0])

def hidden_marker(p: Path) -> str | None:
    "A line of a `#| hide` cell of notebook `p` that appears nowhere else in it (so it must not be in the page)."
    cells = _cells(p)
    visible = '\n'.join(_src(c) + '\n' + _out_text(c) for c in cells if not _hidden(c))
    lines = [l.strip() for c in cells if _hidden(c) for l in _src(c).splitlines()[1:]]
    lines = [l for l in lines if len(l) >= 10 and l not in visible]
    return max(lines, key=len) if lines else None

def _exported(c): return c['cell_type'] == 'code' and re.match(r'\s*#\s*\|\s*export\s*$', _src(c).split('\n', 1)[0])

def code_lines(c) -> list[str]:
    "The lines of code cell `c` a reader should see: no `#|` directive lines, no blank lines, stripped."
    return [l.strip() for l in _src(c).splitlines() if l.strip() and not re.match(r'\s*#\s*\|', l)]

DOC_ENTRY = re.compile(r'<section id="([^"]+)">\s*<h\d>([^<]+)<a class="headerlink"[^>]*>[^<]*</a></h\d>\s*<p><a '
                       r'class="nbdev-source" href="[^"]*/sparse_maml/(\w+)\.py#L\d+"[^>]*>(.*?)(?=<section|$)', re.S)

def doc_entries(page_html: str) -> list[tuple[str, str, str]]:
    "The show_doc entries of a page: (symbol, module its source link points to, the entry's text)."
    return [(sym.strip(), mod, page_text(rest)) for _, sym, mod, rest in DOC_ENTRY.findall(page_html)]

def wrong_sources(page_html: str) -> list[str]:
    "show_doc entries whose source link points to a module that does not define the symbol."
    from sparse_maml._modidx import d
    return [f'{sym} -> {mod}.py' for sym, mod, _ in doc_entries(page_html)
            if f'sparse_maml.{mod}.{sym}' not in d['syms'].get(f'sparse_maml.{mod}', {})]

def test_doc_entries():
    "A show_doc entry is found with the module of its source link; one linked to the wrong module is reported."
    entry = ('<section id="select">\n<h3>select<a class="headerlink" href="#select" title="x">#</a></h3>\n<p><a '
             'class="nbdev-source" href="https://github.com/o/r/blob/main/sparse_maml/{}.py#L61">source</a></p>\n'
             '<pre>def select(records, **changes)</pre></section>')
    assert doc_entries(entry.format('plots')) == [('select', 'plots', 'source\ndef select(records, **changes)')]
    assert wrong_sources(entry.format('plots')) == []
    assert wrong_sources(entry.format('omniglot')) == ['select -> omniglot.py']

def _has_math(p): return any(c['cell_type'] == 'markdown' and '$' in _src(c) for c in _cells(p))
def _has_png(p): return any('image/png' in o.get('data', {}) for c in _cells(p) for o in c.get('outputs', []))

@pytest.fixture(scope='module')
def site():
    with tempfile.TemporaryDirectory() as tmp:
        yield bd.build(Path(tmp), quiet=True)

def test_site_pages_and_offline(site):
    "Every notebook has a page listed in the sidebar, no page fetches from the network, hidden cells are gone."
    nbs = bd.list_notebooks()
    index = (site/'index.html').read_text(encoding='utf-8')
    for p in nbs:
        assert (site/f'{p.stem}.html').exists(), p.name
        assert p.stem == 'index' or f'href="{p.stem}.html"' in index, f'{p.name} missing from the sidebar'
        marker = hidden_marker(p)
        page_html = (site/f'{p.stem}.html').read_text(encoding='utf-8')
        page = page_text(page_html)
        if marker: assert marker not in page, f'{p.name}: a #| hide cell is shown ({marker!r})'
        missing = [l for c in _cells(p) if _exported(c) for l in code_lines(c) if l not in page]
        assert missing == [], f'{p.name}: exported code not shown on its page: {missing[:3]}'
        assert not re.search(r'VAR_(POSITIONAL|KEYWORD)', page_html), f'{p.name}: show_doc\'s VAR_POSITIONAL shown'
        assert wrong_sources(page_html) == [], f'{p.name}: show_doc source links to the wrong module'
    select = [t for sym, _, t in doc_entries((site/'08c_study_figures.html').read_text(encoding='utf-8'))
              if sym == 'select']
    assert len(select) == 1 and '**changes' in select[0], f"08c's show_doc(select): **changes not shown: {select}"
    assert bd.broken_tables(site.parent/'src') == [], 'table rows cut by a `|` (write it as \\| in a table)'
    assert bd.external_assets(site) == []
    broken = bd.broken_links(site)
    assert broken == [], ('links to nowhere (a `#sym-...` target is a symbol without a show_doc entry on its page: '
                          f'one show_doc(...) per cell, only a cell\'s last one is displayed): {broken}')
    assert (site/bd.MATHJAX_DIR/'tex-mml-chtml.js').exists()
    assert (site/bd.MATHJAX_DIR/'fonts/mathjax-newcm-font/chtml/woff2/mjx-ncm-ds.woff2').exists()   # double-struck

def _chromium_dom(page: Path, tmp: Path, *flags) -> str:
    flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             f'--user-data-dir={tmp}', '--virtual-time-budget=10000', *flags]
    r = subprocess.run([CHROMIUM, *flags, '--dump-dom', page.as_uri()],
                       env=BROWSER_ENV, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout

@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (Debian: apt-get install -y chromium); '
                                             'the headless-browser check of the rendered docs is skipped')
def test_chapter_renders_in_browser(site, tmp_path):
    "A chapter with math, a plot and a `#| hide` cell, as a browser shows it: typeset, plotted, hidden cell gone."
    chapters = [p for p in bd.list_notebooks() if p.stem != 'index']
    if not chapters: pytest.skip('no chapter notebooks in nbs/ yet')
    feats = {p: (_has_math(p), _has_png(p), hidden_marker(p)) for p in chapters}
    good = [p for p, (m, png, mk) in feats.items() if m and png and mk]
    assert good, f'no chapter has math, a plot and a #| hide cell: {feats}'
    nb = good[0]
    dom = _chromium_dom(site/f'{nb.stem}.html', tmp_path)
    body = dom.split('<body', 1)[-1]
    assert '<mjx-container' in body, f'{nb.name}: MathJax did not typeset the equations'
    assert '<mjx-merror' not in body, f'{nb.name}: MathJax reported a TeX error'
    text = re.sub(r'<(script|style|pre)\b.*?</\1>', '', body, flags=re.S)  # raw TeX may only stay in code
    without_mml = re.sub(r'<mjx-assistive-mml.*?</mjx-assistive-mml>', '', text, flags=re.S)
    assert '$$' not in text and '\\[' not in without_mml, f'{nb.name}: raw TeX left in the page'
    imgs = re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', body)
    pngs = [s for s in imgs if s.startswith('data:image/png') or s.split('?')[0].endswith('.png')]
    assert pngs, f'{nb.name}: no plot image in the page'
    assert all(s.startswith('data:') or (site/s.split('?')[0]).exists() for s in pngs), 'plot image file missing'
    assert hidden_marker(nb) not in page_text(dom), f'{nb.name}: a #| hide cell is shown'
    for p in chapters:
        if p != nb: assert f'href="{p.stem}.html"' in dom, f'the sidebar lacks {p.name}'

# Run in the page once MathJax has typeset it and the fonts are in: every <pre> of the article that scrolls
# horizontally (longest line, scrollWidth, clientWidth), the same for a 120-character line put in a code cell, and
# the state of MathJax's fonts; written into an attribute of <html> that --dump-dom shows.
MEASURE_JS = """<script>
window.addEventListener('load', () => {
  const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
  typeset.then(() => document.fonts.ready).then(() => {
    const longest = p => Math.max(0, ...p.textContent.split('\\n').map(l => l.length));
    const over = [...document.querySelectorAll('article pre')].filter(p => p.scrollWidth > p.clientWidth)
      .map(p => [longest(p), p.scrollWidth, p.clientWidth, p.textContent.slice(0, 80)]);
    const pre = document.querySelector('div.cell_input pre').cloneNode();    // same classes, same styles
    pre.textContent = 'x'.repeat(120);
    document.querySelector('div.cell_input pre').after(pre);
    const line120 = [pre.scrollWidth, pre.clientWidth];
    pre.remove();
    const fonts = [...document.fonts].filter(f => /^MJX/.test(f.family)).map(f => [f.family, f.status]);
    document.documentElement.setAttribute('data-measure', JSON.stringify(
      {width: window.innerWidth, over, line120, fonts}));
  });
});
</script>"""

def measured_dom(page: Path, tmp: Path) -> tuple[str, dict]:
    "(DOM, measurements) of `page` in a 1280-pixel-wide window with no network, as a reader sees it offline."
    probe = page.with_name('_probe_' + page.name)       # next to the page: same relative links
    probe.write_text(page.read_text(encoding='utf-8').replace('</head>', MEASURE_JS + '</head>', 1), encoding='utf-8')
    try: dom = _chromium_dom(probe, tmp, '--window-size=1280,900', '--host-resolver-rules=MAP * ~NOTFOUND')
    finally: probe.unlink()
    m = re.search(r'<html[^>]*\bdata-measure="([^"]*)"', dom)
    assert m, f'{page.name}: the measuring script did not finish (MathJax or its fonts did not load?)'
    return dom, json.loads(html.unescape(m.group(1)))

def _pre_text(dom: str) -> str:
    "The text of every <pre> (code cells, outputs, show_doc signatures) of the page."
    pres = re.findall(r'<pre\b[^>]*>(.*?)</pre>', dom, re.S)
    return '\n'.join(html.unescape(re.sub(r'<[^>]+>', '', p)) for p in pres)

def _def_lines(nb: Path, name: str) -> list[str]:
    "The lines of the `#| export` cell of notebook `nb` that defines `name` (a function, method or class)."
    cells = [c for c in _cells(nb) if _exported(c) and re.search(rf'^\s*(def|class) {name}\b', _src(c), re.M)]
    assert cells, f'{nb.name} exports no `{name}` any more: update tests/test_docs.py'
    return code_lines(cells[0])

# What the site must show of the code (issue 17): chapter 03's straight-through step, chapter 06's engine.
SHOWN_CODE = {'03_masks': ['StepSTE'], '06_learners': ['task_loss', 'engine', 'loop_task_loss', 'support_grad_sum']}

@pytest.mark.skipif(CHROMIUM is None, reason='chromium is not installed (Debian: apt-get install -y chromium); '
                                             'the headless-browser check of the rendered docs is skipped')
@pytest.mark.parametrize('stem', list(SHOWN_CODE))
def test_code_math_and_width_in_browser(site, tmp_path, stem):
    "03 and 06 at 1280 px: exported code shown, 𝟙 double-struck in its own font, no code line <= 120 chars scrolls."
    nb = REPO/'nbs'/f'{stem}.ipynb'
    dom, m = measured_dom(site/f'{stem}.html', tmp_path)
    code = _pre_text(dom)
    for name in SHOWN_CODE[stem]:
        missing = [l for l in _def_lines(nb, name) if l not in code]
        assert missing == [], f'{stem}: the code of {name} is not shown: {missing[:3]}'
    assert 'VAR_POSITIONAL' not in dom and 'VAR_KEYWORD' not in dom
    assert '<mjx-container' in dom and '<mjx-merror' not in dom, f'{stem}: MathJax did not typeset, or failed'
    if stem == '03_masks':
        assert 'm:Tensor, # mask parameters, any shape' in code, 'StepSTE\'s show_doc signature (its forward)'
        # \mathbb{1} -> U+1D7D9 MATHEMATICAL DOUBLE-STRUCK DIGIT ONE, in MathJax's double-struck font, loaded offline
        assert re.search(r'<mjx-c class="mjx-c1D7D9 NCM-DS">\U0001D7D9</mjx-c>', dom), '\\mathbb{1} not double-struck'
        assert ['MJX-NCM-DS', 'loaded'] in m['fonts'], m['fonts']
    assert not [f for f in m['fonts'] if f[1] == 'error'], f'MathJax fonts failed to load: {m["fonts"]}'
    assert m['width'] == 1280
    scroll, client = m['line120']
    assert scroll <= client, f'{stem}: a 120-character code line needs {scroll} px, the column has {client}'
    assert [o for o in m['over'] if o[0] <= 120] == [], f'{stem}: code blocks scroll: {m["over"]}'

