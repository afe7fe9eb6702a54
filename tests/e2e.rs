//! End-to-end tests of the `arca` binary. One binary; its modules say what
//! is covered.
#![allow(clippy::unwrap_used)]

mod common;

#[path = "e2e/bad_input.rs"]
mod bad_input;
#[path = "e2e/concurrent.rs"]
mod concurrent;
#[path = "e2e/confine.rs"]
mod confine;
#[path = "e2e/corruption.rs"]
mod corruption;
#[path = "e2e/crash.rs"]
mod crash;
#[path = "e2e/damaged_snapshot.rs"]
mod damaged_snapshot;
#[path = "e2e/disk_full.rs"]
mod disk_full;
#[path = "e2e/find.rs"]
mod find;
#[path = "e2e/fixtures.rs"]
mod fixtures;
#[path = "e2e/image.rs"]
mod image;
#[path = "e2e/image_files.rs"]
mod image_files;
#[path = "e2e/image_fixture.rs"]
mod image_fixture;
#[path = "e2e/index_open.rs"]
mod index_open;
#[path = "e2e/prune_gc.rs"]
mod prune_gc;
#[path = "e2e/qcow2.rs"]
mod qcow2;
#[path = "e2e/restore_tree.rs"]
mod restore_tree;
#[path = "e2e/roundtrip.rs"]
mod roundtrip;
