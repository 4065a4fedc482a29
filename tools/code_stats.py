#!/usr/bin/env python
"""Size figures of the library: modules, the longest functions, lines over 120 characters.

Usage: python tools/code_stats.py [--limit 40] [PATH ...]   (default: sparse_maml/)
A function's length counts its lines from `def` to its last statement (signature and docstring included)."""
import argparse, ast, sys
from pathlib import Path


def functions(path: Path):
    "(qualified name, number of lines) of every function and method in `path`."
    tree = ast.parse(path.read_text(), str(path))
    def walk(node, prefix=''):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f'{prefix}{child.name}', child.end_lineno - child.lineno + 1
                yield from walk(child, f'{prefix}{child.name}.')
            elif isinstance(child, ast.ClassDef): yield from walk(child, f'{prefix}{child.name}.')
    yield from walk(tree)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('paths', nargs='*', default=['sparse_maml'])
    p.add_argument('--limit', type=int, default=40, help='report functions longer than this many lines')
    a = p.parse_args(argv)
    files = sorted(f for x in a.paths for f in (Path(x).rglob('*.py') if Path(x).is_dir() else [Path(x)])
                   if f.name != '_modidx.py')
    lines = [l for f in files for l in f.read_text().splitlines()]
    fns = sorted(((n, k, f) for f in files for n, k in functions(f)), key=lambda t: -t[1])
    long = [t for t in fns if t[1] > a.limit]
    over = sum(len(l) > 120 for l in lines)
    sizes = sorted(((len(f.read_text().splitlines()), f.stem) for f in files), reverse=True)
    print(f'{len(files)} modules, {len(lines)} lines (largest: ' + ', '.join(f'{m} {n}' for n, m in sizes[:3]) + ')')
    print(f'{len(fns)} functions; longest: ' + ', '.join(f'{f.stem}.{n} {k}' for n, k, f in fns[:5]))
    names = ', '.join(f'{f.stem}.{n} ({k})' for n, k, f in long)
    print(f'{len(long)} functions over {a.limit} lines' + (f': {names}' if long else ''))
    print(f'{over} of {len(lines)} lines over 120 characters ({100 * over / max(len(lines), 1):.1f}%), '
          f'longest {max(map(len, lines), default=0)}')
    return 0


if __name__ == '__main__': sys.exit(main())
