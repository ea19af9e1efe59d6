"""The second wall: inspect the candidate's own compiled object before anything loads it.

If the parser check were ever wrong, what the compiler made of the candidate still has to
look like a pure function: its undefined symbols are a subset of the allowlist (libm), it
defines only the holes, it has no writable data, no constructors or destructors (code that
would run when the object is loaded), no thread-local storage, no indirect functions, and
its machine code has no instruction that talks to the kernel or reads a clock or the CPU's
random source (syscall, sysenter, int, rdtsc, rdrand, cpuid, ...).
"""
from __future__ import annotations

from pathlib import Path

from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

LOAD_TIME = (".init_array", ".fini_array", ".preinit_array", ".ctors", ".dtors", ".init", ".fini")
# instructions no pure function needs: kernel entry, I/O ports, clocks and randomness (the
# result would differ between runs), CPU identification, privileged state
FORBIDDEN_INSNS = {
    "syscall", "sysenter", "sysexit", "sysret", "int", "int1", "int3", "into", "iret", "iretq",
    "rdtsc", "rdtscp", "rdpid", "rdrand", "rdseed", "rdpmc", "cpuid", "xgetbv", "xsetbv",
    "in", "out", "insb", "insw", "insd", "outsb", "outsw", "outsd", "hlt", "cli", "sti",
    "rdmsr", "wrmsr", "lgdt", "lidt", "lldt", "ltr", "invlpg", "wbinvd", "vmcall", "vmmcall",
    "wrfsbase", "wrgsbase", "rdfsbase", "rdgsbase", "swapgs", "clflush", "monitor", "mwait",
    "umonitor", "umwait", "tpause", "enclu", "encls", "xbegin", "xabort",
}


def audit_object(path: Path, allowed_undefined: set[str], holes: set[str], file: str = "policy.c") -> list[str]:
    """Problems with the compiled candidate, as feedback lines (empty: it passes)."""
    errs: list[str] = []
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            if elf["e_type"] != "ET_REL":
                return [f"{file}: the compiled candidate is not a relocatable object"]
            for sec in elf.iter_sections():
                name, flags = sec.name, sec["sh_flags"]
                if name in LOAD_TIME or name.startswith(LOAD_TIME):
                    errs.append(f"{file}: the compiled code has {name}: code that runs when it is loaded is not allowed")
                elif flags & SH_FLAGS.SHF_ALLOC and flags & SH_FLAGS.SHF_WRITE and sec["sh_size"] > 0:
                    errs.append(f"{file}: the compiled code has writable data ({name}): no state is allowed")
                elif flags & SH_FLAGS.SHF_TLS:
                    errs.append(f"{file}: the compiled code has thread-local storage ({name})")
                elif flags & SH_FLAGS.SHF_EXECINSTR and sec["sh_size"] > 0:
                    errs += _instructions(sec.data(), name, file, elf["e_machine"])
            symtab = elf.get_section_by_name(".symtab")
            for sym in symtab.iter_symbols() if symtab else []:
                errs += _symbol(sym, allowed_undefined, holes, file)
    except (OSError, ELFError) as e:
        return [f"{file}: cannot read the compiled candidate: {e}"]
    return sorted(set(errs), key=errs.index)


def _symbol(sym, allowed_undefined: set[str], holes: set[str], file: str) -> list[str]:
    name, kind, bind = sym.name, sym["st_info"]["type"], sym["st_info"]["bind"]
    if not name or kind in ("STT_FILE", "STT_SECTION"):
        return []
    if kind == "STT_GNU_IFUNC":
        return [f"{file}: the compiled code defines an indirect function ({name})"]
    if kind == "STT_TLS":
        return [f"{file}: the compiled code uses thread-local storage ({name})"]
    if sym["st_shndx"] == "SHN_UNDEF":
        if name not in allowed_undefined:
            return [f"{file}: the compiled code calls '{name}', which is not allowed "
                    f"(allowed: {', '.join(sorted(allowed_undefined))})"]
        return []
    if bind == "STB_GLOBAL" and kind in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE") and name not in holes:
        return [f"{file}: the compiled code defines '{name}'; only {', '.join(sorted(holes))} may be defined"]
    if bind == "STB_GNU_UNIQUE":
        return [f"{file}: the compiled code defines a unique global ({name})"]
    return []


def _instructions(code: bytes, section: str, file: str, machine: str) -> list[str]:
    if machine != "EM_X86_64":
        return [f"{file}: cannot audit machine code for {machine}"]
    md = Cs(CS_ARCH_X86, CS_MODE_64)  # a linear sweep: compiled C keeps data out of .text here
    errs = []
    decoded = 0
    for insn in md.disasm_lite(code, 0):
        _, size, mnemonic, _ = insn
        decoded += size
        if mnemonic in FORBIDDEN_INSNS or mnemonic.startswith("rep ") and mnemonic[4:] in FORBIDDEN_INSNS:
            errs.append(f"{file}: the compiled code contains the instruction '{mnemonic}' ({section}), which "
                        f"no policy needs")
    if decoded != len(code):
        errs.append(f"{file}: part of the compiled code ({section}) could not be decoded")
    return errs
