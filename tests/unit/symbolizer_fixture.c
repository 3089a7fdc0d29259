/* Functions laid out by hand for symbolizer_test: the cases a compiler does not make. Each is
   global so that the test finds its address with dlsym; none is ever called. */
__asm__(
    ".text\n"
    ".p2align 6\n"
    /* A label without a size and a sized function at one address (the label's name is shorter,
       so it ranks first), then 64 bytes of code no symbol covers. */
    ".globl a0\n.type a0, @function\n"
    ".globl sized_fn\n.type sized_fn, @function\n"
    "a0:\n"
    "sized_fn:\n"
    ".fill 64, 1, 0x90\n"
    ".size sized_fn, 64\n"
    ".size a0, 0\n"
    ".globl gap_start\n.type gap_start, @object\n" /* an object, not a function: ignored */
    "gap_start:\n"
    ".fill 64, 1, 0xcc\n"
    /* A function with another inside it. */
    ".globl outer\n.type outer, @function\n"
    "outer:\n"
    ".fill 32, 1, 0x90\n"
    ".globl inner\n.type inner, @function\n"
    "inner:\n"
    ".fill 16, 1, 0x90\n"
    ".size inner, 16\n"
    ".fill 80, 1, 0x90\n"
    ".size outer, 128\n"
    /* Two names of one length and binding at one address, and of one size. */
    ".globl same_b\n.type same_b, @function\n"
    ".globl same_a\n.type same_a, @function\n"
    "same_b:\n"
    "same_a:\n"
    ".fill 32, 1, 0x90\n"
    ".size same_a, 32\n"
    ".size same_b, 32\n"
    /* Two sizes at one address: the larger is shown. */
    ".globl short_b\n.type short_b, @function\n"
    ".globl long_b\n.type long_b, @function\n"
    "short_b:\n"
    "long_b:\n"
    ".fill 48, 1, 0x90\n"
    ".size short_b, 8\n"
    ".size long_b, 48\n");
