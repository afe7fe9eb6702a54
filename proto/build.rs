//! Generates the node protocol's messages and gRPC stubs (needs `protoc`,
//! Debian's protobuf-compiler; the README's commands install it).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/node.proto");
    println!("cargo:rerun-if-changed=proto/agent.proto");
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_protos(&["proto/node.proto", "proto/agent.proto"], &["proto"])?;
    Ok(())
}
