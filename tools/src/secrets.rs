//! Secrets the command line is given: the datastore passphrase from
//! `--passphrase-file` or `ARCA_PASSPHRASE`. Used by the commands that open
//! a datastore and by `arca catalog import`.

use anyhow::{Context, Result};

use crate::Cli;

/// The datastore passphrase: the file's content without its line end, or
/// `ARCA_PASSPHRASE`; `None` for an unencrypted datastore.
pub(crate) fn passphrase(cli: &Cli) -> Result<Option<Vec<u8>>> {
    if let Some(f) = &cli.passphrase_file {
        let mut p =
            std::fs::read(f).with_context(|| format!("reading passphrase file {}", f.display()))?;
        while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            p.pop();
        }
        return Ok(Some(p));
    }
    Ok(std::env::var_os("ARCA_PASSPHRASE")
        .map(|p| std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec()))
}
