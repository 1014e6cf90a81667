//! The package each function is created with: the emulator only stores it (the router runs
//! the built handler binaries), so it is a stand-in that says so if anything runs it.

use anyhow::{Context as _, Result};
use std::path::Path;

/// A one-file zip (stored, not compressed): the package each function is created with. The
/// emulator only stores it; the router runs the built binaries.
pub fn write_stand_in_zip(path: &Path) -> Result<()> {
    let name = b"bootstrap";
    let data = b"#!/bin/sh\necho 'run by the router from the built binary' >&2\nexit 1\n";
    let crc = crc32fast::hash(data);
    let (n, d) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    // Local file header.
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time, date
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name);
    z.extend_from_slice(data);
    let central = z.len() as u32;
    // Central directory entry (external attributes: a regular file, mode 0755).
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&d.to_le_bytes());
    z.extend_from_slice(&n.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // extra, comment, disk, internal attrs
    z.extend_from_slice(&(0o100_755u32 << 16).to_le_bytes());
    z.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header
    z.extend_from_slice(name);
    let size = z.len() as u32 - central;
    // End of central directory.
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    std::fs::write(path, z).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::process::Command;

    #[test]
    fn the_stand_in_package_is_a_zip_python_can_read() {
        let dir = std::env::temp_dir().join(pairscale_testkit::unique("zip"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bootstrap.zip");
        write_stand_in_zip(&path).unwrap();
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
                 i = z.getinfo('bootstrap'); print(oct(i.external_attr >> 16), z.read(i).decode().splitlines()[0])",
            ])
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "0o100755 #!/bin/sh"
        );
    }
}
