//! Generates the C# P/Invoke declarations from src/lib.rs with csbindgen. The output always goes
//! to OUT_DIR, where the `bindings_are_fresh` test compares it with the committed copy in
//! bindings/; with XFLOW_REGENERATE_BINDINGS=1 (what build.ps1 sets outside CI) the committed
//! copy is rewritten too.

use std::path::PathBuf;

const BINDINGS_HEADER: &str =
    "// Source: rust/xflow-ffi/src/lib.rs. Regenerate with `dotnet pwsh ./build.ps1`.";

fn main() {
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-env-changed=XFLOW_REGENERATE_BINDINGS");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("NativeMethods.g.cs");
    csbindgen::Builder::default()
        .input_extern_file("src/lib.rs")
        .csharp_dll_name("xflow_delivery")
        .csharp_namespace("XFlowDelivery.Native")
        .csharp_class_name("NativeMethods")
        .csharp_class_accessibility("internal")
        .csharp_use_nint_types(false)
        .csharp_generate_const_filter(|name| name.starts_with("XFD_"))
        .csharp_file_header(BINDINGS_HEADER)
        .generate_csharp_file(&out)
        .expect("csbindgen failed to generate the C# bindings");
    if std::env::var("XFLOW_REGENERATE_BINDINGS").as_deref() == Ok("1") {
        let committed =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bindings/NativeMethods.g.cs");
        std::fs::copy(&out, &committed).expect("cannot write bindings/NativeMethods.g.cs");
    }
}
