"The library's names: each defined in one module, so that show_doc's source links and the site's symbol links resolve."
from collections import defaultdict
from sparse_maml._modidx import d


def test_each_name_defined_once():
    "nbdev finds a symbol's source by its name: a name in two modules links the page to the wrong file."
    where = defaultdict(list)
    for mod, syms in d['syms'].items():
        for sym in syms: where[sym[len(mod) + 1:].split('.')[0]].append(mod)
    twice = {name: mods for name, mods in where.items() if len(set(mods)) > 1}
    assert twice == {}, f'names defined in more than one module (rename one): {twice}'
