//! xdptop and the benchmark load these objects with
//! `EbpfLoader::with_btf(None)`: no target BTF, so aya applies no CO-RE
//! relocations. That is only right while the objects have none (no
//! `BPF_CORE_READ`, no `preserve_access_index`); otherwise load them with the
//! kernel's BTF (`Btf::from_sys_fs`).

use aya_obj::Object;

fn assert_no_core_relocations(name: &str, object: &[u8]) {
    let obj = Object::parse(object).unwrap_or_else(|e| panic!("parsing {name}: {e}"));
    assert!(
        obj.btf.is_some(),
        "{name} carries no BTF: the pinned maps would lose their types"
    );
    assert!(
        !obj.has_btf_relocations(),
        "{name} has CO-RE relocations: it needs the kernel's BTF to load"
    );
}

#[test]
fn objects_need_no_kernel_btf() {
    assert_no_core_relocations("xdp_stats.bpf.o", xdp_ebpf::xdptop_object());
    assert_no_core_relocations("seed_style.bpf.o", xdp_ebpf::seed_style_object());
    assert_no_core_relocations("empty.bpf.o", xdp_ebpf::empty_object());
    assert_no_core_relocations("verdicts.bpf.o", xdp_ebpf::verdicts_object());
}
