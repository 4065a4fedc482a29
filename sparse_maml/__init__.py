__version__ = "0.1.0"

# Transparent huge pages for torch's large CPU allocations (chapter 09, "The allocator", measures what this buys).
# torch reads the switch at its first large allocation, so it is set when the package is imported;
# THP_MEM_ALLOC_ENABLE=0 opts out.
import os as _os
_os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')
