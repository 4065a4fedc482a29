"""Render the course notebooks into a static site that works offline (`make docs`).

Quarto (what nbdev renders with) cannot be installed here, so the site is built with Jupyter Book 1.x
(Sphinx + MyST-NB + sphinx-book-theme) from nbdev's *processed* notebooks:

1. every `nbs/*.ipynb` goes through nbdev's own processors (`nbdev.processors.FilterDefaults`: front matter,
   `#| hide` cells removed, `show_doc` added for exported symbols and executed, doc links), except that
   `#| export` cells keep their source: the site shows the code the course teaches (nbdev's `rm_export`
   would drop it);
2. a small adapter turns that Quarto-flavoured output into what MyST-NB reads (front matter -> `# title` +
   `> subtitle`, `echo`/`output`/`include` directives -> cell tags, directive lines dropped, `show_doc`
   output -> markdown cells with `*args`/`**kwargs` as written, nbdev doc links -> links between the pages,
   `|` in inline code of table rows escaped, cell ids);
3. `jupyter-book build` renders them without executing anything (`execute_notebooks: off`);
4. MathJax 4 and its New Computer Modern font (which has the double-struck digits of `\\mathbb{1}`) are
   vendored from the npm registry (sha512-verified, cached) into `_mathjax/`, and the built HTML is checked
   for any asset a browser would fetch from the network.

Usage: `python tools/build_docs.py [--out DIR] [--only NAME ...]`; the site lands in `DIR/_build/html`
(default `docs/_build/html`, git-ignored: it is an artifact, never committed).
"""
from __future__ import annotations
import argparse, base64, hashlib, html.parser, io, json, multiprocessing, os, re, shutil, subprocess, sys
import tarfile, tempfile, time, urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NBS = REPO/'nbs'
DEFAULT_OUT = REPO/'docs'

MATHJAX_VERSION = '4.1.3'
# MathJax 4: its New Computer Modern TeX font has the double-struck digits of `\mathbb{1}` (U+1D7D9; 3.2.2's fonts have
# none and show a plain 1). The font is a package of its own. Per npm package: the registry's sha512 of the tarball
# (`npm view PKG@VERSION dist.integrity`, checked before use), its folder under `_mathjax/`, and what the site needs
# of it (about 4 MB of 20): the combined TeX component, the TeX extensions and accessibility parts it loads on
# demand, the font's CHTML glyph data and woff2 files. The speech rule engine (4 MB, a web worker that file:// pages
# may not start) is left out: the site sets MathJax's `enrich` off and keeps the assistive MathML, as 3.2.2 had it.
MATHJAX_PACKAGES = {
    'mathjax': ('sha512-BN/8Pkgn7G1pIDYJqd9md+JHsE/jydSYbyOZnSdSA0WziuVO8mRxdYiWFumkVVly/8U+hm9DpIIoWuvySverzw==',
                '', ('LICENSE', 'tex-mml-chtml.js', 'input/tex/extensions/', 'a11y/', 'ui/')),
    '@mathjax/mathjax-newcm-font': (
        'sha512-gzAB3dFHilHX1l5x2xUqRL+1jDQt3Fyza1DkEMVXWC4E8SvsGdlgEza47HYi2WhVcgfkvf4zgUGzuhbq3Pjlew==',
        'fonts/mathjax-newcm-font/', ('package.json', 'chtml/woff2/', 'chtml/dynamic/')),
}
MATHJAX_DIR = '_mathjax'   # in the built site; outside `_static/` (Jupyter Book adds a <script> per .js there)
# The page's `window.MathJax`: the font from `_mathjax/fonts/` (MathJax 4 would take it from a CDN); no semantic
# enrichment (speech, braille, explorer: its rule engine is not vendored), assistive MathML for screen readers instead.
# MathJax 4's TeX input has textmacros built in: `\text{fan\_in}` typesets as in LaTeX.
MATHJAX_CONFIG = {'loader': {'paths': {'fonts': '[mathjax]/fonts'}},
                  'options': {'menuOptions': {'settings': {'enrich': False, 'assistiveMml': True}}}}

# --------------------------------------------------------------------------------------------------------
# Which notebooks, and under which page names

def list_notebooks(nbs: Path | None = None) -> list[Path]:
    "The notebooks to render: `nbs/*.ipynb` sorted by name (`index` first), skipping `_`/`.` files."
    nbs_ = [p for p in Path(nbs or NBS).glob('*.ipynb') if not p.name.startswith(('_', '.'))]
    return sorted(nbs_, key=lambda p: (p.stem != 'index', p.name))

def nbdev_page(name: str) -> str:
    "The page nbdev's doc links point at for notebook `name` (`01_maml.ipynb` -> `maml.html`)."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', name.lower()).rsplit('.', 1)[0] + '.html'

# --------------------------------------------------------------------------------------------------------
# Step 1: nbdev's processors (run in worker processes: they execute imports, exports and show_doc cells)

def nbdev_process(src: Path) -> dict:
    "Run nbdev's docs processors on notebook `src`; returns the processed notebook as a JSON dict."
    from execnb.nbio import read_nb, nb2dict
    src = Path(src).resolve()
    cwd, main, in_test = os.getcwd(), sys.modules.get('__main__'), os.environ.get('IN_TEST')
    os.environ['IN_TEST'] = '1'                 # what `nbdev_proc_nbs` sets while processing
    os.chdir(src.parent)                        # same working directory as `nbdev_test`
    try:
        nb = read_nb(src)
        site_filter()(nb)
        return nb2dict(nb)
    except Exception as e:
        cause = f'\n{type(e.__cause__).__name__}: {e.__cause__}' if e.__cause__ else ''
        hint = ('\n(nbdev runs, for the docs, every cell that contains an import, together with the rest of that cell: '
                'put imports in cells of their own, as the nbdev FAQ says)'
                if re.search(r'^\s*(import|from)\s', str(e), re.M) else '')
        raise RuntimeError(f'nbdev processing failed for {src.name}: {e}{cause}{hint}') from e
    finally:
        os.chdir(cwd)
        if main is not None: sys.modules['__main__'] = main      # IPython's shell replaced it
        if in_test is None: os.environ.pop('IN_TEST', None)
        else: os.environ['IN_TEST'] = in_test

HIDDEN_DIRECTIVES = {'hide', 'default_exp'}

def rm_hidden(cell):
    "nbdev's `rm_export` for the site: drop the source of `#| hide` and `#| default_exp` cells, keep `#| export` ones."
    if cell.directives_ and cell.directives_.keys() & HIDDEN_DIRECTIVES: del cell['source']

EXPORT_TAG = 'nbdev-export'     # MyST-NB gives the cell the class `tag_nbdev-export` (BOOK_CSS labels it)

def tag_export(cell):
    "Tag `#| export` cells (nbdev removes the directive line from the source, the tag tells the adapter)."
    if cell.cell_type == 'code' and 'export' in (cell.directives_ or {}):
        cell.metadata['tags'] = [*cell.metadata.get('tags', []), EXPORT_TAG]

def site_filter():
    "nbdev's `FilterDefaults` with `rm_export` replaced by `rm_hidden`: exported code is shown, with its `show_doc`."
    from nbdev.processors import FilterDefaults, rm_export
    class SiteFilter(FilterDefaults):
        def base_procs(self): return [rm_hidden if p is rm_export else p for p in super().base_procs()] + [tag_export]
    return SiteFilter()

# libkineto (torch.profiler's C++ back end) writes to the workers' stderr on its own: `USDT ... profiler_start/_stop`
# whenever a cell that nbdev runs here uses torch.profiler (a cell with an import runs whole; chapter 09's operator
# table did) and, on a machine without a GPU, `ERROR ... gpuGetDeviceCount failed`. Level 6 (above its highest,
# USDT = 5) turns only that logger off: cells' outputs and Python errors are untouched. KINETO_LOG_LEVEL set by the
# caller is kept (0 shows everything).
QUIET_ENV = {'KINETO_LOG_LEVEL': '6'}

def _worker_init():
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    for k, v in QUIET_ENV.items(): os.environ.setdefault(k, v)    # read by libkineto when torch loads it
    import warnings; warnings.filterwarnings('ignore')    # nbdev's "imports and other code" advice

# --------------------------------------------------------------------------------------------------------
# Step 2: adapt the processed (Quarto-flavoured) notebook for MyST-NB

_re_directive = re.compile(r'^\s*#\s*\|\s*(.*?)\s*$')
_re_fm = re.compile(r'^\s*---\s*\n(.*?)\n---\s*$', re.DOTALL)
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'

def _src(cell) -> str:
    s = cell.get('source', '')
    return ''.join(s) if isinstance(s, list) else (s or '')

def split_directives(src: str) -> tuple[dict[str, str], str]:
    "Split the leading `#| key: value` lines off a code cell: (directives, remaining source)."
    lines, dirs = src.splitlines(), {}
    while lines and _re_directive.match(lines[0]):
        k, _, v = _re_directive.match(lines.pop(0)).group(1).partition(':')
        dirs[k.strip()] = v.strip().strip('"\'').lower()
    return dirs, '\n'.join(lines)

def _md(source: str) -> dict: return {'cell_type': 'markdown', 'metadata': {}, 'source': source}

_re_var_arg = re.compile(r'\b(\w+):VAR_(POSITIONAL|KEYWORD)\b')

def star_args(md: str) -> str:
    "`show_doc`'s `args:VAR_POSITIONAL` / `kw:VAR_KEYWORD` as Python writes them: `*args` / `**kw`."
    return _re_var_arg.sub(lambda m: ('*' if m.group(2) == 'POSITIONAL' else '**') + m.group(1), md)

def _tidy_markdown(md: str) -> str:
    "Tidy `show_doc` markdown: no leading `---` (MyST reads front matter), source link under heading, tight fences."
    md = star_args(re.sub(r'^\s*---\s*\n', '', md, count=1))
    # source link under its heading
    md = re.sub(r'^\s*(\[source\]\([^)\s]*\)\{[^}\n]*\})\s*\n\s*\n(#+ [^\n]*)\n', r'\2\n\n\1\n', md)
    md = re.sub(r'\n\s*\n```(\n|$)', r'\n```\1', re.sub(r'```(\w+)\n\s*\n', r'```\1\n', md)).strip()
    # an anchor of its own for the symbol (a section id may be taken, e.g. by a page title of the same name)
    def anchored(m): return f'<span id="{symbol_id(m.group(2))}"></span>\n\n{m.group(0)}'
    return re.sub(r'^(#+)[ \t]+(\S+)[ \t]*$', anchored, md, count=1, flags=re.M)

def symbol_id(name: str) -> str:
    "The HTML id of `name`'s `show_doc` entry (`Learner.outer_loss` -> `sym-learner-outer-loss`)."
    from docutils.nodes import make_id
    return make_id('sym-' + name.lower())

def _out_markdown(outputs) -> str:
    return '\n\n'.join(_tidy_markdown(''.join(o['data']['text/markdown'])) for o in outputs
                       if 'text/markdown' in o.get('data', {}))

def _front_matter_cell(src: str) -> dict | None:
    import yaml
    m = _re_fm.match(src)
    fm = yaml.safe_load(m.group(1)) if m else None
    if not isinstance(fm, dict): return None
    md = f"# {fm['title']}" if fm.get('title') else ''
    if fm.get('description'): md += f"\n\n> {fm['description']}"
    return _md(md) if md else None

WIDGET_NOTE = '*An interactive widget: open the notebook in JupyterLab (`make lab`) to use it.*'

def _clean_outputs(outputs: list) -> list:
    "Interactive widget views become a note (no widget JavaScript from a CDN; their `repr` says nothing)."
    res = []
    for o in outputs:
        if WIDGET_MIME in o.get('data', {}):
            o = {**o, 'data': {'text/markdown': WIDGET_NOTE}}
        res.append(o)
    return res

def adapt_cell(cell: dict) -> list[dict]:
    "Turn one processed cell into the cells MyST-NB should see (possibly none)."
    src, ct = _src(cell), cell['cell_type']
    if ct == 'raw':
        fm = _front_matter_cell(src)
        if fm is not None: return [fm]
        return [] if src.lstrip().startswith('---') else [cell]
    if ct == 'markdown':
        src = re.sub(r'^\s*---\s*\n', '', src, count=1) if src.lstrip().startswith('---') else src
        return [_md(src)] if src.strip() else []
    dirs, body = split_directives(src)
    if dirs.get('include') == 'false': return []
    outputs = _clean_outputs(cell.get('outputs', []))
    res = []
    if dirs.get('output') == 'asis':           # markdown output (show_doc) becomes a markdown cell
        md = _out_markdown(outputs)
        outputs = [o for o in outputs if 'text/markdown' not in o.get('data', {})]
        if md: res.append(_md(md))
    tags = [EXPORT_TAG] if 'export' in dirs or EXPORT_TAG in cell.get('metadata', {}).get('tags', []) else []
    if dirs.get('echo') == 'false': tags.append('remove-input')
    if dirs.get('output') == 'false': tags.append('remove-output')
    no_input = not body.strip() or 'remove-input' in tags
    no_output = not outputs or 'remove-output' in tags
    if not (no_input and no_output):
        code = {'cell_type': 'code', 'execution_count': None, 'metadata': {'tags': tags} if tags else {},
                'outputs': outputs, 'source': body}
        res.insert(0, code)
    return res

_re_fence = re.compile(r'^(```|~~~).*?^\1[ \t]*$', re.M | re.S)
_re_nbdev_link = re.compile(r'\[(`[^`]+`)\]\((?:https?://[^)\s]+)\)')
_re_attr_link = re.compile(r'\[([^\]]+)\]\((https?://[^)\s]+)\)\{([^}]*)\}')

def _attr_link(m) -> str:
    "A Quarto link with attributes (show_doc's `[source](url){style=...}`) as an HTML link."
    from html import escape
    attrs = ''.join(f' {k}="{escape(v)}"' for k, v in re.findall(r'([\w-]+)="([^"]*)"', m.group(3)))
    return f'<a class="nbdev-source" href="{escape(m.group(2))}"{attrs}>{escape(m.group(1))}</a>'

def _link_rewriter(doc_base: str, pages: dict[str, str]):
    "Replace nbdev doc links (`{doc_base}/maml.html#sgd_step`) with links to the symbol's `show_doc` in this site."
    from html import escape
    pat = re.compile(r'\[([^\]]*)\]\(' + re.escape(doc_base.rstrip('/')) + r'/([^)#\s]+\.html)(?:#([^)\s]*))?\)')
    def sub(m):
        label, page, anchor = m.groups()
        if page not in pages: return label           # not in this build: keep the text, drop the link
        # Raw HTML: MyST-NB cannot resolve heading slugs in notebooks; the target is show_doc's own anchor.
        href = Path(pages[page]).stem + '.html' + (f'#{symbol_id(anchor)}' if anchor else '')
        code = re.fullmatch(r'`([^`]+)`', label)
        text = (f'<code class="docutils literal notranslate"><span class="pre">{escape(code.group(1))}</span></code>'
                if code else escape(label))
        return f'<a class="reference internal nbdev-link" href="{href}">{text}</a>'
    def relink(md: str) -> str:
        out, pos = [], 0
        for f in _re_fence.finditer(md):             # inside code fences a link is shown as typed: undo it
            out += [_re_attr_link.sub(_attr_link, pat.sub(sub, md[pos:f.start()])),
                    _re_nbdev_link.sub(r'\1', f.group(0))]
            pos = f.end()
        return ''.join(out + [_re_attr_link.sub(_attr_link, pat.sub(sub, md[pos:]))])
    return relink

# Tables: markdown-it (like GitHub) splits a table row at every `|` that is not escaped, inside inline code too, and
# silently drops the cells beyond the header's count: `omniglot|miniimagenet` in a row would cut it.
_re_table_delim = re.compile(r'^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$')
_re_code_span = re.compile(r'(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)')
_re_pipe = re.compile(r'(?<!\\)\|')
_re_fence_open = re.compile(r'^\s*(`{3,}|~{3,})')

def table_rows(md: str) -> list[tuple[int, bool]]:
    "(line number, is the header) of every row of every table in markdown `md`, outside code fences."
    lines, fence, rows, i = md.split('\n'), None, [], 0
    while i < len(lines):
        m = _re_fence_open.match(lines[i])
        if m and (fence is None or (m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence))):
            fence = None if fence else m.group(1)
        elif not fence and i + 1 < len(lines) and '|' in lines[i] and '|' in lines[i+1] and \
                _re_table_delim.match(lines[i+1]):
            rows.append((i, True)); i += 2
            while i < len(lines) and lines[i].strip() and '|' in lines[i]: rows.append((i, False)); i += 1
            continue
        i += 1
    return rows

def table_cells(row: str) -> list[str]:
    "The cells of a table row as markdown-it splits it (at every `|` not escaped, inline code or not)."
    row = row.strip().removeprefix('|')
    if row.endswith('|') and not row.endswith('\\|'): row = row[:-1]
    return _re_pipe.split(row)

def escape_table_pipes(md: str) -> str:
    "`|` inside inline code of a table row escaped (`\\|`, shown as `|`), so that it does not split the cell."
    lines = md.split('\n')
    for i, _ in table_rows(md):
        lines[i] = _re_code_span.sub(lambda m: m.group(1) + _re_pipe.sub(r'\\|', m.group(2)) + m.group(1), lines[i])
    return '\n'.join(lines)

def broken_table_rows(md: str) -> list[str]:
    "Table rows of `md` with a `|` in inline code not escaped, or not as many cells as their header."
    lines, bad, n = md.split('\n'), [], 0
    for i, header in table_rows(md):
        k = len(table_cells(lines[i]))
        n = k if header else n
        if k != n or any(_re_pipe.search(c) for _, c in _re_code_span.findall(lines[i])): bad.append(lines[i])
    return bad

def drop_repeated_docs(cells: list[dict]) -> list[dict]:
    "A symbol's `show_doc` once per page, the notebook's own (the last): nbdev adds one after the symbol's export cell"
    # for a `@patch`ed method, or for a class the notebook documents through a method (`show_doc(StepSTE.forward,
    # name='StepSTE')`: the added one would show `Function`'s `*args, **kwargs`), even when the notebook shows it.
    sym = lambda c: c['cell_type'] == 'markdown' and (m := re.match(r'<span id="(sym-[^"]+)"></span>', _src(c))) \
        and m.group(1)
    last = {sym(c): i for i, c in enumerate(cells) if sym(c)}
    return [c for i, c in enumerate(cells) if not sym(c) or last[sym(c)] == i]

def adapt_notebook(nb: dict, stem: str, doc_base: str = '', pages: dict[str, str] | None = None) -> dict:
    "The processed notebook `nb` as MyST-NB wants it (cells adapted, links local, every cell with an id)."
    relink = _link_rewriter(doc_base, pages or {}) if doc_base else (lambda s: s)
    cells = drop_repeated_docs([c for cell in nb['cells'] for c in adapt_cell(cell)])
    for i, c in enumerate(cells):
        if c['cell_type'] == 'markdown': c['source'] = relink(escape_table_pipes(_src(c)))
        for o in c.get('outputs', []):                # e.g. a table shown with IPython's Markdown()
            if 'text/markdown' in o.get('data', {}):
                o['data']['text/markdown'] = relink(escape_table_pipes(_src({'source': o['data']['text/markdown']})))
        c['id'] = f'{re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:50]}-{i}'
    meta = {k: v for k, v in nb.get('metadata', {}).items() if k in ('kernelspec', 'language_info')}
    meta.setdefault('kernelspec', {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'})
    return {'cells': cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}

def _settings() -> dict[str, str]:
    from configparser import ConfigParser
    cfg = ConfigParser(delimiters=['=']); cfg.read(REPO/'settings.ini', encoding='utf-8')
    return dict(cfg['DEFAULT'])

def doc_base_url(settings: dict) -> str:
    "The doc site prefix nbdev writes into links (settings.ini `doc_host` + `doc_baseurl`)."
    return settings['doc_host'].rstrip('/') + '/' + settings.get('doc_baseurl', '').strip('/')

def _prepare_one(args) -> tuple[str, str]:
    src, doc_base, pages = args
    nb = adapt_notebook(nbdev_process(Path(src)), Path(src).stem, doc_base, pages)
    return Path(src).name, json.dumps(nb, indent=1, ensure_ascii=False) + '\n'

ASSET_SUFFIXES = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp', '.pdf', '.mp4', '.webm'}

def copy_assets(nbs: Path, dest: Path) -> int:
    "Copy the images notebooks link to (`![](images/x.png)`) from `nbs` into the book, keeping their paths."
    n = 0
    for p in Path(nbs).rglob('*'):
        rel = p.relative_to(nbs)
        if (not p.is_file() or p.suffix.lower() not in ASSET_SUFFIXES
                or any(part.startswith(('.', '_')) for part in rel.parts)): continue
        d = dest/rel
        if not d.exists() or d.stat().st_size != p.stat().st_size or d.stat().st_mtime < p.stat().st_mtime:
            d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, d); n += 1
    return n

def _write_if_changed(p: Path, text: str) -> bool:
    "Write only when different, so Sphinx re-renders only the pages that changed; True if written."
    if p.exists() and p.read_text(encoding='utf-8') == text: return False
    p.write_text(text, encoding='utf-8'); return True

# --------------------------------------------------------------------------------------------------------
# Book configuration (generated: the table of contents follows the notebooks in nbs/)

def book_config(settings: dict) -> dict:
    "Jupyter Book `_config.yml`: no execution, MyST markdown everywhere, local MathJax, no CDN assets."
    return {
        'title': settings.get('title', 'sparse-maml'), 'author': settings.get('author', ''),
        'copyright': settings.get('copyright', ''), 'only_build_toc_files': True,
        'exclude_patterns': ['_build', '**.ipynb_checkpoints'],
        'execute': {'execute_notebooks': 'off'},
        'parse': {'myst_enable_extensions': ['colon_fence', 'dollarmath', 'amsmath'],
                  'myst_dmath_double_inline': True},
        'html': {'use_repository_button': False, 'use_issues_button': False, 'use_edit_page_button': False,
                 'home_page_in_navbar': True, 'comments': {'hypothesis': False, 'utterances': False},
                 'extra_footer': 'Rendered from the notebooks in <code>nbs/</code> with <code>make docs</code>.'},
        'launch_buttons': {'notebook_interface': 'classic', 'binderhub_url': '', 'jupyterhub_url': '',
                           'thebe': False, 'colab_url': '', 'deepnote_url': ''},
        'repository': {'url': settings.get('git_url', ''), 'branch': settings.get('branch', 'main'),
                       'path_to_book': 'nbs'},
        'sphinx': {'config': {
            'nb_render_markdown_format': 'myst',       # docstrings' $math$ is typeset like the prose's
            'nb_ipywidgets_js': {},                    # no require.js / widget manager from a CDN
            'mathjax_path': f'../{MATHJAX_DIR}/tex-mml-chtml.js',   # relative to _static/
            'mathjax3_config': MATHJAX_CONFIG,
            'html_show_copyright': True, 'html_last_updated_fmt': None,
            'suppress_warnings': ['mystnb.unknown_mime_type', 'myst.header'],
        }},
    }

# Jupyter Book links every .css file in `_static/`. Code lines of up to 120 characters (the notebooks' limit, `make
# lint`) fit the content column without scrolling from 1280 px wide: a slightly smaller monospace font, an article
# column of up to 64rem, and between 1200 and 1700 px (where the theme would squeeze the article between both
# sidebars) the "on this page" sidebar becomes the button at the right of the top bar that opens it (pydata's; the
# book theme's own button in the article header opens nothing with pydata-sphinx-theme 0.17).
# show_doc's `source` link goes on a line of its own above the signature (floated beside it, it narrowed the code
# box). Exported code (`#| export` cells, what `sparse_maml` is made of) has a coloured left rule and a small label.
BOOK_CSS = """/* sparse-maml docs (written by tools/build_docs.py) */
.bd-page-width { max-width: 110rem; }
.bd-main .bd-content .bd-article-container { max-width: 64rem; }
div.cell div.highlight pre, div.cell_output pre, .bd-article div.highlight pre { font-size: 0.78rem; }
@media (min-width: 1200px) and (max-width: 1699.98px) {
  div.bd-sidebar-secondary { display: none; }
  .bd-header button.secondary-toggle { display: flex; }
}
.bd-article p:has(> a.nbdev-source) { text-align: right; margin: -0.4rem 0 0.2rem; line-height: 1.2; }
.bd-article a.nbdev-source { float: none !important; }
div.cell.tag_nbdev-export > div.cell_input { border-left-color: var(--pst-color-primary); position: relative; }
div.cell.tag_nbdev-export > div.cell_input::after {
  content: "exported"; position: absolute; right: 0.5rem; bottom: 0.2rem; pointer-events: none;
  font-size: 0.65rem; letter-spacing: 0.05em; text-transform: uppercase; color: var(--pst-color-text-muted);
}
"""

def book_toc(names: list[str]) -> dict:
    "Jupyter Book `_toc.yml`: `index` is the root, every other notebook a chapter, in file-name order."
    stems = [Path(n).stem for n in names]
    root = 'index' if 'index' in stems else stems[0]
    return {'format': 'jb-book', 'root': root, 'chapters': [{'file': s} for s in stems if s != root]}

# --------------------------------------------------------------------------------------------------------
# MathJax, from the npm registry, verified and cached

def cache_dir() -> Path:
    xdg_cache = Path(os.environ.get('XDG_CACHE_HOME') or Path.home()/'.cache')
    base = os.environ.get('SPARSE_MAML_DOCS_CACHE') or xdg_cache/'sparse-maml-docs'
    return Path(base)

def _integrity(data: bytes) -> str: return 'sha512-' + base64.b64encode(hashlib.sha512(data).digest()).decode()

def npm_tarball_name(pkg: str, version: str = MATHJAX_VERSION) -> str:
    "The file `npm pack PKG@VERSION` writes (`@scope/name` -> `scope-name-VERSION.tgz`)."
    return pkg.removeprefix('@').replace('/', '-') + f'-{version}.tgz'

def npm_tarball_url(pkg: str, version: str = MATHJAX_VERSION) -> str:
    return f'https://registry.npmjs.org/{pkg}/-/{pkg.rsplit("/", 1)[-1]}-{version}.tgz'

def _fetch_npm_tgz(pkg: str, tmp: Path) -> bytes:
    "The tarball of `pkg`: from `$MATHJAX_TGZ_DIR` if set, else `npm pack`, else a plain download from the registry."
    name = npm_tarball_name(pkg)
    if os.environ.get('MATHJAX_TGZ_DIR'): return (Path(os.environ['MATHJAX_TGZ_DIR'])/name).read_bytes()
    if shutil.which('npm'):
        r = subprocess.run(['npm', 'pack', f'{pkg}@{MATHJAX_VERSION}', '--silent', '--pack-destination', str(tmp)],
                           capture_output=True, text=True)
        if r.returncode == 0 and (tmp/name).exists(): return (tmp/name).read_bytes()
    with urllib.request.urlopen(npm_tarball_url(pkg), timeout=60) as f: return f.read()

def _extract(data: bytes, part: Path, folder: str, keep: tuple[str, ...]):
    "The files of an npm tarball named by `keep` (files, or folders ending in `/`) into `part/folder`."
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for m in tf.getmembers():
            rel = m.name.removeprefix('package/')
            kept = any(rel == k or (k.endswith('/') and rel.startswith(k)) for k in keep)
            if not m.isfile() or not kept: continue
            out = part/folder/rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tf.extractfile(m).read())

def ensure_mathjax() -> Path:
    "A verified, trimmed MathJax (and its font) in the cache, fetched once; returns its folder."
    dest = cache_dir()/f'mathjax-{MATHJAX_VERSION}'
    if (dest/'.verified').exists(): return dest
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp)/'mathjax'
        for pkg, (integrity, folder, keep) in MATHJAX_PACKAGES.items():
            try: data = _fetch_npm_tgz(pkg, Path(tmp))
            except Exception as e:
                raise SystemExit(f'Could not fetch {pkg}@{MATHJAX_VERSION} ({e}). Download ' + ' and '.join(
                    npm_tarball_url(p) for p in MATHJAX_PACKAGES) + ' into a folder and set MATHJAX_TGZ_DIR to it, '
                    'or run once with network access.')
            if _integrity(data) != integrity:
                raise SystemExit(f'{pkg}@{MATHJAX_VERSION}: the tarball fails its sha512 integrity check; not used.')
            _extract(data, part, folder, keep)
        (part/'.verified').write_text(''.join(f'{p}@{MATHJAX_VERSION} {v[0]}\n' for p, v in MATHJAX_PACKAGES.items()))
        if dest.exists(): shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(part), dest)
    return dest

# --------------------------------------------------------------------------------------------------------
# Offline check: nothing in the built pages may make a browser reach the network

class _AssetFinder(html.parser.HTMLParser):
    "Collect URLs of resources a browser loads by itself (scripts, styles, images, frames, fonts)."
    LOADS = {'script': 'src', 'img': 'src', 'iframe': 'src', 'source': 'src', 'video': 'src', 'audio': 'src',
             'embed': 'src', 'object': 'data'}
    LINK_RELS = {'stylesheet', 'preload', 'modulepreload', 'prefetch', 'preconnect', 'dns-prefetch', 'icon',
                 'manifest', 'shortcut'}
    def __init__(self):
        super().__init__(); self.urls, self.links, self.ids = [], [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.links.append(a['href'])
        if tag in self.LOADS and a.get(self.LOADS[tag]): self.urls.append(a[self.LOADS[tag]])
        if tag == 'link' and set((a.get('rel') or '').lower().split()) & self.LINK_RELS and a.get('href'):
            self.urls.append(a['href'])

def _remote(url: str) -> bool: return bool(re.match(r'^\s*(https?:)?//', url, re.I))

def external_assets(html_dir: Path) -> list[str]:
    "`page: url` for every remote resource the built site would fetch (HTML tags and CSS `url()`/`@import`)."
    bad = []
    for p in sorted(Path(html_dir).rglob('*.html')):
        f = _AssetFinder(); f.feed(p.read_text(encoding='utf-8', errors='replace'))
        bad += [f'{p.relative_to(html_dir)}: {u}' for u in f.urls if _remote(u)]
    for p in sorted(Path(html_dir).rglob('*.css')):
        css = p.read_text(encoding='utf-8', errors='replace')
        urls = re.findall(r'url\(\s*[\'"]?([^\'")]+)', css) + re.findall(r'@import\s+[\'"]([^\'"]+)', css)
        bad += [f'{p.relative_to(html_dir)}: {u}' for u in urls if _remote(u)]
    return bad

def _parse(p: Path) -> _AssetFinder:
    f = _AssetFinder(); f.feed(p.read_text(encoding='utf-8', errors='replace')); return f

def broken_links(html_dir: Path) -> list[str]:
    "`page: href` for every link between the site's pages whose page or `#id` does not exist."
    html_dir, bad, parsed = Path(html_dir), [], {}
    def get(p):
        if p not in parsed: parsed[p] = _parse(p)
        return parsed[p]
    for p in sorted(html_dir.glob('*.html')):
        for href in get(p).links:
            if re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:|^//', href): continue       # external (http:, mailto:, ...)
            path, _, frag = href.partition('#')
            target = (p.parent/path.split('?')[0]).resolve() if path else p
            if target.suffix != '.html' and path: continue                     # downloads, images
            if not target.exists() or (frag and frag not in get(target).ids): bad.append(f'{p.name}: {href}')
    return bad

# --------------------------------------------------------------------------------------------------------
# The build

def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent/'jupyter-book'
    return [str(exe)] if exe.exists() else [shutil.which('jupyter-book') or 'jupyter-book']

def _write_book(srcs: list[Path], src_dir: Path, nbs: Path, settings: dict, workers: int | None):
    "The book's sources in `src_dir`: the processed, adapted notebooks, their images, `_config.yml`, CSS, `_toc.yml`."
    src_dir.mkdir(parents=True, exist_ok=True)
    for old in src_dir.glob('*.ipynb'):               # notebooks removed from nbs/ leave the book too
        if old.name not in {p.name for p in srcs}: old.unlink()
    pages = {nbdev_page(p.name): p.name for p in srcs}
    jobs = [(str(p), doc_base_url(settings), pages) for p in srcs]
    # Each worker pays ~3 s of imports (nbdev, IPython, torch) once; on 2 cores one worker is the fastest.
    n_workers = workers or max(1, min(len(jobs), (os.cpu_count() or 1) // 2, 4))
    spawn = multiprocessing.get_context('spawn')
    with ProcessPoolExecutor(n_workers, mp_context=spawn, initializer=_worker_init) as ex:
        try:
            for name, text in ex.map(_prepare_one, jobs): _write_if_changed(src_dir/name, text)
        except RuntimeError as e: raise SystemExit(str(e)) from None
    copy_assets(nbs, src_dir)
    import yaml
    _write_if_changed(src_dir/'_config.yml', yaml.safe_dump(book_config(settings), sort_keys=False))
    (src_dir/'_static').mkdir(exist_ok=True)
    if _write_if_changed(src_dir/'_static'/'sparse-maml.css', BOOK_CSS):    # Sphinx copies it, and updates the
        (src_dir.parent/'html'/'.buildinfo').unlink(missing_ok=True)      # pages' `?v=` of it, only on a full build
    _write_if_changed(src_dir/'_toc.yml', yaml.safe_dump(book_toc([p.name for p in srcs]), sort_keys=False))

def broken_tables(src_dir: Path) -> list[str]:
    "`notebook: row` for every table row of the book's markdown (cells and outputs) that markdown-it would cut."
    bad = []
    for p in sorted(Path(src_dir).glob('*.ipynb')):
        for c in json.loads(p.read_text(encoding='utf-8'))['cells']:
            mds = [_src(c)] if c['cell_type'] == 'markdown' else []
            mds += [_src({'source': o['data']['text/markdown']}) for o in c.get('outputs', [])
                    if 'text/markdown' in o.get('data', {})]
            bad += [f'{p.name}: {row}' for md in mds for row in broken_table_rows(md)]
    return bad

def build(out: Path = DEFAULT_OUT, nbs: Path | None = None, only: list[str] | None = None, quiet: bool = False,
          workers: int | None = None) -> Path:
    "Render the notebooks of `nbs` into `out/_build/html`; returns that folder."
    t0, log = time.time(), (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    out = Path(out).resolve()
    srcs = list_notebooks(nbs)
    if only: srcs = [p for p in srcs if p.stem in only or p.name in only or p.stem == 'index']
    if not srcs: raise SystemExit(f'No notebooks in {nbs or NBS}')
    log(f'processing {len(srcs)} notebooks with nbdev ...')
    src_dir, html_dir = out/'_build'/'src', out/'_build'/'html'
    _write_book(srcs, src_dir, Path(nbs or NBS), _settings(), workers)
    for b in broken_tables(src_dir): log(f'  WARNING: table row cut by a `|` (escape it as \\|): {b}')
    mj = ensure_mathjax()                             # copied first, so Sphinx can add its checksum
    shutil.rmtree(html_dir/MATHJAX_DIR, ignore_errors=True)      # no files left from another MathJax version
    shutil.copytree(mj, html_dir/MATHJAX_DIR, ignore=shutil.ignore_patterns('.verified'))
    log(f'rendering with Jupyter Book ({time.time()-t0:.1f} s so far) ...')
    r = subprocess.run(_jupyter_book() + ['build', str(src_dir), '--path-output', str(out), '--builder', 'html'],
                       capture_output=True, text=True, env={**os.environ, 'PYDEVD_DISABLE_FILE_VALIDATION': '1'})
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-6000:] + r.stderr[-6000:])
        raise SystemExit(f'jupyter-book build failed (exit {r.returncode})')
    warns = [l for l in (r.stdout + r.stderr).splitlines() if 'WARNING' in l or 'ERROR' in l]
    for w in warns: log('  ' + w)
    bad = external_assets(html_dir)
    if bad: raise SystemExit('The built site would fetch from the network:\n  ' + '\n  '.join(bad))
    for b in broken_links(html_dir): log(f'  WARNING: broken link {b}')
    log(f'done in {time.time()-t0:.1f} s: {html_dir/"index.html"}')
    return html_dir

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', type=Path, default=DEFAULT_OUT, help='the site goes to OUT/_build/html (default docs/)')
    ap.add_argument('--only', nargs='*', help='render only these notebooks (stems or file names), plus index')
    ap.add_argument('--workers', type=int,
                    help='processes running nbdev on the notebooks (default: cores/2, at most 4)')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args(argv)
    build(a.out, None, a.only, a.quiet, a.workers)

if __name__ == '__main__': main()
