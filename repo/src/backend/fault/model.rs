//! The power-loss model of the fault backend: what a file tree holds after
//! a crash, when writes not yet made durable are lost.

use super::*;

/// Files of a directory tree by relative path.
pub(super) type Tree = BTreeMap<PathBuf, Vec<u8>>;

pub(super) fn read_tree(dir: &Path) -> io::Result<Tree> {
    let mut out = Tree::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
            } else {
                match fs::read(&p) {
                    Ok(b) => {
                        let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
                        out.insert(rel, b);
                    }
                    // Deleted while we looked (RocksDB removing an old file).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

pub(super) fn write_tree(dir: &Path, tree: &Tree) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for (rel, bytes) in tree {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(p, bytes)?;
    }
    Ok(())
}

enum Entry {
    File(u64),
    Dir,
}

/// The index (rolled back on its own), the space reserve (zeros, never
/// written after it is made) and the writer lock (empty, only locked) are
/// not in the model.
pub(super) fn outside_model(root: &Path, dir: &Path, name: &std::ffi::OsStr) -> bool {
    dir == root
        && (name == "index" || name == crate::reserve::RESERVE || name == crate::reserve::LOCK)
}

/// What is durable under the root (the index aside), by directory, and
/// which content each file ("inode") had at its last fsync.
pub(super) struct Model {
    root: PathBuf,
    next: u64,
    content: HashMap<u64, Arc<Vec<u8>>>,
    /// Current path of each file this model knows.
    inode: HashMap<PathBuf, u64>,
    /// Durable entries of each directory.
    dirs: HashMap<PathBuf, BTreeMap<OsString, Entry>>,
}

impl Model {
    pub(super) fn load(root: &Path) -> io::Result<Model> {
        let mut m = Model {
            root: root.to_path_buf(),
            next: 0,
            content: HashMap::new(),
            inode: HashMap::new(),
            dirs: HashMap::new(),
        };
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            let mut entries = BTreeMap::new();
            for e in fs::read_dir(&d)? {
                let e = e?;
                let p = e.path();
                if outside_model(root, &d, &e.file_name()) {
                    continue;
                }
                if e.file_type()?.is_dir() {
                    stack.push(p);
                    entries.insert(e.file_name(), Entry::Dir);
                } else {
                    let i = m.new_inode(fs::read(&p)?);
                    m.inode.insert(p, i);
                    entries.insert(e.file_name(), Entry::File(i));
                }
            }
            m.dirs.insert(d, entries);
        }
        Ok(m)
    }

    pub(super) fn new_inode(&mut self, content: Vec<u8>) -> u64 {
        self.next += 1;
        self.content.insert(self.next, Arc::new(content));
        self.next
    }

    pub(super) fn created(&mut self, path: &Path) {
        let i = self.new_inode(Vec::new());
        self.inode.insert(path.to_path_buf(), i);
    }

    pub(super) fn synced_file(&mut self, path: &Path) -> io::Result<()> {
        let data = fs::read(path)?;
        match self.inode.get(path) {
            Some(i) => {
                self.content.insert(*i, Arc::new(data));
            }
            None => {
                let i = self.new_inode(data);
                self.inode.insert(path.to_path_buf(), i);
            }
        }
        Ok(())
    }

    pub(super) fn renamed(&mut self, from: &Path, to: &Path) {
        if let Some(i) = self.inode.remove(from) {
            self.inode.insert(to.to_path_buf(), i);
        }
    }

    pub(super) fn removed(&mut self, path: &Path) {
        self.inode.remove(path);
    }

    pub(super) fn dirs_created(&mut self, dirs: &[PathBuf]) {
        for d in dirs {
            self.dirs.entry(d.clone()).or_default();
        }
    }

    pub(super) fn synced_dir(&mut self, dir: &Path) -> io::Result<()> {
        let mut entries = BTreeMap::new();
        for e in fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            if outside_model(&self.root, dir, &e.file_name()) {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                self.dirs.entry(p).or_default();
                entries.insert(e.file_name(), Entry::Dir);
            } else if ft.is_file() {
                let i = match self.inode.get(&p) {
                    Some(i) => *i,
                    // Written outside the backend since the start: taken
                    // as it is now.
                    None => {
                        let i = self.new_inode(fs::read(&p)?);
                        self.inode.insert(p, i);
                        i
                    }
                };
                entries.insert(e.file_name(), Entry::File(i));
            }
        }
        self.dirs.insert(dir.to_path_buf(), entries);
        Ok(())
    }

    /// Replace everything under the root but the index by the durable state.
    pub(super) fn restore(&self) -> io::Result<()> {
        for e in fs::read_dir(&self.root)? {
            let e = e?;
            if outside_model(&self.root, &self.root, &e.file_name()) {
                continue;
            }
            if e.file_type()?.is_dir() {
                fs::remove_dir_all(e.path())?;
            } else {
                fs::remove_file(e.path())?;
            }
        }
        self.build(&self.root)
    }

    pub(super) fn build(&self, dir: &Path) -> io::Result<()> {
        let Some(entries) = self.dirs.get(dir) else {
            return Ok(());
        };
        for (name, e) in entries {
            if outside_model(&self.root, dir, name) {
                continue;
            }
            let p = dir.join(name);
            match e {
                Entry::File(i) => {
                    let data = self.content.get(i).map(|c| c.as_slice()).unwrap_or(&[]);
                    fs::write(&p, data)?;
                }
                Entry::Dir => {
                    fs::create_dir_all(&p)?;
                    self.build(&p)?;
                }
            }
        }
        Ok(())
    }
}
