//! The served tree: every file and folder a tab serves, walked once when the tab is built,
//! and the only place a request path is ever resolved against.
//!
//! A request can reach exactly the nodes listed here, nothing else: the visitor's path is
//! looked up name by name among a folder's children, never joined to a path on disk.
//! Symbolic links inside served folders are not followed and not listed (a link could point
//! anywhere, and a chain of links or a link to a folder as well); sockets, pipes and devices
//! neither. The paths the user named are taken as given, links included, because the user
//! chose them. Hidden files (names starting with `.`) are served like any other: the user
//! chose the folder. Files are opened by the path recorded here and checked to be the same
//! file (device, inode, size, modification time) as when the tab started ([`super::source`]).

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::source::Stamp;
use crate::http::{percent_decode, percent_encode_segment};

/// The most files and folders one tree may hold.
pub const MAX_NODES: usize = 1_000_000;
/// The deepest folder nesting that is walked.
pub const MAX_DEPTH: usize = 256;
/// The longest path inside the tree, in bytes (a zip entry's name holds at most 65,535).
pub const MAX_PATH_BYTES: usize = 60_000;

/// One file or folder of the tree.
#[derive(Debug)]
pub struct Node {
    /// The name shown and used in URLs (and in share's zip), unique among its siblings.
    pub name: String,
    /// The path from the top of the tree, names joined by `/` (empty for the root).
    pub rel: String,
    /// Modification time: seconds since the Unix epoch and nanoseconds.
    pub mtime: (i64, u32),
    /// A file or a folder.
    pub kind: Kind,
}

/// What a node is.
#[derive(Debug)]
pub enum Kind {
    /// A folder, with its children sorted by name.
    Dir {
        /// Indexes of the children in [`Tree::nodes`], sorted by name.
        children: Vec<usize>,
        /// Bytes in all the files below.
        total_size: u64,
        /// Files below, at any depth.
        files: u64,
    },
    /// A file.
    File(FileInfo),
}

/// Where a served file is and what it was when the tab started.
#[derive(Debug)]
pub struct FileInfo {
    /// The path it is opened by.
    pub path: PathBuf,
    /// Its size when the tab started.
    pub size: u64,
    /// Its identity, size and modification time when the tab started.
    pub stamp: Stamp,
    /// Whether any execute bit is set (share keeps it in the zip).
    pub executable: bool,
}

/// Every node of the tree, in depth-first order with siblings sorted by name; node 0 is the
/// root folder: the folder served ([`Tree::of_folder`]), or a folder whose children are the
/// items the user listed ([`Tree::of_items`]).
#[derive(Debug)]
pub struct Tree {
    /// The nodes; a node's index here is its id.
    pub nodes: Vec<Node>,
    /// Symbolic links and special files (sockets, pipes, devices) found and left out.
    pub skipped: usize,
}

/// Why a request path does not name a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The path is malformed or tries to leave the tree (`..`, `%2f`, `%5c`, NUL...): `400`.
    Refused,
    /// No such file or folder in the tree: `404`.
    NotFound,
}

/// Why the paths cannot be served as they are.
///
/// Every one of these is found while walking the paths, so a mode's config check reports it
/// (naming the path) and the host starts nothing: a tab that would fail some visitors later
/// is refused at once.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A file or folder cannot be read by the user running the host.
    #[error(
        "cannot read {}: {source}; make it readable by the user running onionhost, \
         or move it out of what is served",
        path.display()
    )]
    Unreadable {
        /// The file or folder.
        path: PathBuf,
        /// What opening or listing it gave.
        source: io::Error,
    },
    /// [`Tree::of_folder`] was given something else than a folder.
    #[error("{} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// A file was replaced by something else while it was walked.
    #[error("{} changed while the tab was being prepared; try again", .0.display())]
    Changed(PathBuf),
    /// Too many files and folders.
    #[error("more than {MAX_NODES} files and folders; serve fewer")]
    TooMany,
    /// A path inside the tree too long (for a zip entry, among others).
    #[error(
        "{} is too deep: its path from the top is longer than {MAX_PATH_BYTES} bytes",
        .0.display()
    )]
    PathTooLong(PathBuf),
    /// Folders nested too deep.
    #[error("{} is nested more than {MAX_DEPTH} folders deep", .0.display())]
    TooDeep(PathBuf),
}

impl Tree {
    /// Walks the folder `dir`: node 0 is `dir` itself (followed if it is a link: the user
    /// named it), its files and folders below. Every file and folder must be readable, as
    /// for [`Tree::of_items`].
    pub fn of_folder(dir: &Path) -> Result<Self, TreeError> {
        let meta = std::fs::metadata(dir).map_err(|source| TreeError::Unreadable {
            path: dir.to_owned(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(TreeError::NotAFolder(dir.to_owned()));
        }
        let mut tree = Self {
            nodes: Vec::new(),
            skipped: 0,
        };
        tree.add(String::new(), "", dir, &meta, 0)?;
        Ok(tree)
    }

    /// Walks the paths the user listed, checking that every file and folder in them can be
    /// read: each folder is listed and each file opened once (root reads everything, so only
    /// opening says what the host's user may read: permissions, ACLs, security modules).
    /// Node 0 is a folder that holds the listed items, named as typed and made unique.
    pub fn of_items(paths: &[PathBuf]) -> Result<Self, TreeError> {
        let mut index = Self {
            nodes: vec![Node {
                name: String::new(),
                rel: String::new(),
                mtime: (0, 0),
                kind: Kind::Dir {
                    children: Vec::new(),
                    total_size: 0,
                    files: 0,
                },
            }],
            skipped: 0,
        };
        let mut taken = HashSet::new();
        let mut items = Vec::new();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|source| TreeError::Unreadable {
                path: path.clone(),
                source,
            })?;
            // The name the user typed (a link keeps its own name); for `.` or `..`, the
            // folder's real name.
            let base = path.file_name().map(|n| n.to_owned()).or_else(|| {
                path.canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_owned()))
            });
            let base = base.map_or_else(|| "shared".to_owned(), |n| display_name(&n));
            let name = unique_name(&base, meta.is_dir(), &mut taken);
            items.push((name, path.clone(), meta));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut children = Vec::with_capacity(items.len());
        for (name, path, meta) in items {
            children.push(index.add(name, "", &path, &meta, 1)?);
        }
        index.finish_dir(0, children);
        Ok(index)
    }

    /// Adds the file or folder at `path` (already stat'ed) and, for a folder, everything in it.
    fn add(
        &mut self,
        name: String,
        parent_rel: &str,
        path: &Path,
        meta: &Metadata,
        depth: usize,
    ) -> Result<usize, TreeError> {
        if self.nodes.len() >= MAX_NODES {
            return Err(TreeError::TooMany);
        }
        let rel = if name.is_empty() {
            String::new()
        } else if parent_rel.is_empty() {
            name.clone()
        } else {
            format!("{parent_rel}/{name}")
        };
        if rel.len() > MAX_PATH_BYTES {
            return Err(TreeError::PathTooLong(path.to_owned()));
        }
        let id = self.nodes.len();
        let mtime = (meta.mtime(), u32::try_from(meta.mtime_nsec()).unwrap_or(0));
        if meta.is_file() {
            let unreadable = |source| TreeError::Unreadable {
                path: path.to_owned(),
                source,
            };
            // Opened only to learn whether it can be read; closed at once.
            let opened = File::open(path).map_err(unreadable)?;
            let now = opened.metadata().map_err(unreadable)?;
            if !now.is_file() || (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
                return Err(TreeError::Changed(path.to_owned()));
            }
            self.nodes.push(Node {
                name,
                rel,
                mtime,
                kind: Kind::File(FileInfo {
                    path: path.to_owned(),
                    size: meta.len(),
                    stamp: Stamp::of(meta),
                    executable: meta.mode() & 0o111 != 0,
                }),
            });
            return Ok(id);
        }
        if depth > MAX_DEPTH {
            return Err(TreeError::TooDeep(path.to_owned()));
        }
        self.nodes.push(Node {
            name,
            rel: rel.clone(),
            mtime,
            kind: Kind::Dir {
                children: Vec::new(),
                total_size: 0,
                files: 0,
            },
        });
        let unreadable = |path: &Path| {
            let path = path.to_owned();
            move |source| TreeError::Unreadable { path, source }
        };
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path).map_err(unreadable(path))? {
            let entry = entry.map_err(unreadable(path))?;
            let entry_path = entry.path();
            let meta = std::fs::symlink_metadata(&entry_path).map_err(unreadable(&entry_path))?;
            if meta.is_file() || meta.is_dir() {
                entries.push((entry.file_name(), meta));
            } else {
                self.skipped += 1;
            }
        }
        // Sorting by the name on disk first makes the de-duplicated names deterministic.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut taken = HashSet::new();
        let mut named: Vec<_> = entries
            .into_iter()
            .map(|(os_name, meta)| {
                let name = unique_name(&display_name(&os_name), meta.is_dir(), &mut taken);
                (name, os_name, meta)
            })
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut children = Vec::with_capacity(named.len());
        for (name, os_name, meta) in named {
            children.push(self.add(name, &rel, &path.join(os_name), &meta, depth + 1)?);
        }
        self.finish_dir(id, children);
        Ok(id)
    }

    /// Records a folder's children and their totals.
    fn finish_dir(&mut self, id: usize, new_children: Vec<usize>) {
        let (mut size, mut count) = (0u64, 0u64);
        for &child in &new_children {
            match &self.nodes[child].kind {
                Kind::File(file) => {
                    size += file.size;
                    count += 1;
                }
                Kind::Dir {
                    total_size, files, ..
                } => {
                    size += total_size;
                    count += files;
                }
            }
        }
        if let Kind::Dir {
            children,
            total_size,
            files,
        } = &mut self.nodes[id].kind
        {
            *children = new_children;
            *total_size = size;
            *files = count;
        }
    }

    /// The root folder's totals: bytes and files.
    pub fn totals(&self) -> (u64, u64) {
        match &self.nodes[0].kind {
            Kind::Dir {
                total_size, files, ..
            } => (*total_size, *files),
            Kind::File(file) => (file.size, 1),
        }
    }

    /// Resolves a request path below the tree's URL (share: the part after `/files/`; a
    /// website: after the leading `/`), still percent-encoded. The empty path is refused.
    ///
    /// Each segment is decoded on its own and looked up among the current folder's children;
    /// a segment that decodes to `.`, `..`, or contains `/`, `\` or NUL is refused, as is an
    /// empty segment anywhere but at the end (a folder's trailing slash).
    pub fn resolve(&self, raw: &str) -> Result<usize, Lookup> {
        let mut node = 0;
        let segments: Vec<&str> = raw.split('/').collect();
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                if i + 1 == segments.len() && i > 0 {
                    break;
                }
                return Err(Lookup::Refused);
            }
            let name = percent_decode(segment).map_err(|_| Lookup::Refused)?;
            if name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
                return Err(Lookup::Refused);
            }
            let Kind::Dir { children, .. } = &self.nodes[node].kind else {
                return Err(Lookup::NotFound);
            };
            let found = children
                .binary_search_by(|&child| self.nodes[child].name.as_str().cmp(&*name))
                .map_err(|_| Lookup::NotFound)?;
            node = children[found];
        }
        Ok(node)
    }

    /// The child of folder `dir` named exactly `name`, if there is one.
    pub fn child(&self, dir: usize, name: &str) -> Option<usize> {
        let Kind::Dir { children, .. } = &self.nodes.get(dir)?.kind else {
            return None;
        };
        children
            .binary_search_by(|&child| self.nodes[child].name.as_str().cmp(name))
            .ok()
            .map(|found| children[found])
    }
}

/// The name shown for a name on disk: invalid UTF-8 replaced, and `\` (a separator for some
/// unzip programs) replaced by `_` so that no name can be read as a path.
fn display_name(name: &std::ffi::OsStr) -> String {
    name.to_string_lossy().replace('\\', "_")
}

/// `name`, or `name (2)`, `name (3)`... (before a file's extension), whichever is not taken.
fn unique_name(name: &str, is_dir: bool, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.to_owned()) {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 && !is_dir => name.split_at(dot),
        _ => (name, ""),
    };
    (2u64..)
        .map(|n| format!("{stem} ({n}){ext}"))
        .find(|candidate| taken.insert(candidate.clone()))
        .unwrap_or_else(|| name.to_owned())
}

/// The URL of a node below `base` (share: `/files`; a website: the empty string): `base`,
/// then each segment of its path encoded ([`percent_encode_segment`]); folders (the root
/// included) end with `/`.
pub fn node_url(base: &str, node: &Node) -> String {
    let mut url = String::from(base);
    if !node.rel.is_empty() {
        for segment in node.rel.split('/') {
            url.push('/');
            url.push_str(&percent_encode_segment(segment));
        }
    }
    if matches!(node.kind, Kind::Dir { .. }) {
        url.push('/');
    }
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn tree() -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("docs/inner")).unwrap();
        std::fs::write(root.join("docs/a.txt"), "a").unwrap();
        std::fs::write(root.join("docs/inner/b.txt"), "bb").unwrap();
        std::fs::write(root.join("loose.txt"), "ccc").unwrap();
        std::fs::create_dir(root.join("other")).unwrap();
        std::fs::write(root.join("other/loose.txt"), "dddd").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("docs/link")).unwrap();
        let index = Tree::of_items(&[
            root.join("docs"),
            root.join("loose.txt"),
            root.join("other/loose.txt"),
        ])
        .unwrap();
        (dir, index)
    }

    fn rel(index: &Tree, raw: &str) -> Result<String, Lookup> {
        index.resolve(raw).map(|id| index.nodes[id].rel.clone())
    }

    #[test]
    fn loose_files_beside_a_folder_are_all_shared_and_same_names_made_unique() {
        let (_dir, index) = tree();
        let names: Vec<&str> = index.nodes.iter().map(|n| n.rel.as_str()).collect();
        assert_eq!(
            names,
            [
                "",
                "docs",
                "docs/a.txt",
                "docs/inner",
                "docs/inner/b.txt",
                "loose (2).txt",
                "loose.txt"
            ]
        );
        assert_eq!(index.totals(), (10, 4));
        assert_eq!(index.skipped, 1, "the symlink is left out");
    }

    #[test]
    fn paths_resolve_only_inside_the_share() {
        let (_dir, index) = tree();
        assert_eq!(rel(&index, "docs/inner/b.txt").unwrap(), "docs/inner/b.txt");
        assert_eq!(rel(&index, "docs/").unwrap(), "docs");
        assert_eq!(rel(&index, "loose%20%282%29.txt").unwrap(), "loose (2).txt");
        for refused in [
            "..",
            "docs/../loose.txt",
            "%2e%2e",
            "docs/%2E%2E/loose.txt",
            "docs%2fa.txt",
            "docs%2Fa.txt",
            "docs%5ca.txt",
            "/etc/passwd",
            "docs//a.txt",
            "docs/./a.txt",
            "a%00b",
            "%zz",
            "%",
            "%ff",
            "",
        ] {
            assert_eq!(rel(&index, refused), Err(Lookup::Refused), "{refused}");
        }
        for missing in ["nope", "docs/link", "loose.txt/x", "docs/A.txt"] {
            assert_eq!(rel(&index, missing), Err(Lookup::NotFound), "{missing}");
        }
    }

    /// Regression (issue 9): the hand-written decoder read `%+1` as the byte 0x01 (it parsed
    /// "+1" as hexadecimal), so `/files/%+1` served a file named U+0001. A `%` must be
    /// followed by two hexadecimal digits; anything else is refused (400), not guessed at.
    #[test]
    fn percent_plus_one_is_a_malformed_escape_not_a_byte() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("\u{1}"), "x").unwrap();
        let index = Tree::of_items(&[dir.path().to_owned()]).unwrap();
        let top = index.nodes[1].name.clone();
        let base = format!("{}/", percent_encode_segment(&top));
        assert_eq!(
            rel(&index, &format!("{base}%01")).unwrap(),
            format!("{top}/\u{1}")
        );
        for malformed in ["%+1", "%-1", "% 1", "%1", "%+01"] {
            assert_eq!(
                rel(&index, &format!("{base}{malformed}")),
                Err(Lookup::Refused),
                "{malformed}"
            );
        }
    }

    #[test]
    fn urls_round_trip_through_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "plain.txt",
            "sp ace & <b>\"q\"'.txt",
            "ünïcödé 日本.txt",
            "new\nline.txt",
            "bidi\u{202e}txt.exe",
            "100%.txt",
            "back\\slash.txt",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        let index = Tree::of_items(&[dir.path().to_owned()]).unwrap();
        assert_eq!(index.nodes.len(), names.len() + 2);
        for node in &index.nodes[1..] {
            let url = node_url("/files", node);
            let raw = url.strip_prefix("/files/").unwrap();
            assert!(raw.is_ascii(), "{url}");
            assert_eq!(index.nodes[index.resolve(raw).unwrap()].rel, node.rel);
        }
        assert!(index.nodes.iter().any(|n| n.name == "back_slash.txt"));
    }

    #[test]
    fn shared_items_are_named_as_typed() {
        let (dir, _) = tree();
        let root = dir.path();
        std::os::unix::fs::symlink(root.join("docs"), root.join("my-link")).unwrap();
        let index = Tree::of_items(&[root.join("docs/inner/.."), root.join("my-link")]).unwrap();
        let top: Vec<&str> = match &index.nodes[0].kind {
            Kind::Dir { children, .. } => children
                .iter()
                .map(|&c| index.nodes[c].name.as_str())
                .collect(),
            Kind::File(_) => Vec::new(),
        };
        assert_eq!(
            top,
            ["docs", "my-link"],
            "a link the user listed is followed"
        );
    }

    /// A website's folder: node 0 is the folder itself, and no kind of link gets in: to a
    /// file inside, to a file outside, a chain of links, a link to a folder (inside or out).
    #[test]
    fn a_folder_tree_leaves_out_every_kind_of_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("site");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join(".hidden"), "dot").unwrap();
        std::fs::write(root.join("sub/page.html"), "page").unwrap();
        std::fs::write(outside.path().join("secret"), "secret").unwrap();
        let link = |to: &Path, name: &str| std::os::unix::fs::symlink(to, root.join(name)).unwrap();
        link(&root.join("index.html"), "in");
        link(&outside.path().join("secret"), "out");
        link(&root.join("in"), "chain");
        link(&root.join("sub"), "dir-in");
        link(outside.path(), "dir-out");
        let tree = Tree::of_folder(&root).unwrap();
        let rels: Vec<&str> = tree.nodes.iter().map(|n| n.rel.as_str()).collect();
        assert_eq!(rels, ["", ".hidden", "index.html", "sub", "sub/page.html"]);
        assert_eq!(tree.skipped, 5);
        assert_eq!(tree.child(0, "index.html"), Some(2));
        assert_eq!(tree.child(0, "in"), None);
        assert_eq!(tree.child(2, "x"), None, "a file has no children");
        for raw in ["in", "out", "chain", "dir-in/page.html", "dir-out/secret"] {
            assert_eq!(rel(&tree, raw), Err(Lookup::NotFound), "{raw}");
        }
        assert_eq!(node_url("", &tree.nodes[0]), "/");
        assert_eq!(node_url("", &tree.nodes[3]), "/sub/");
        assert_eq!(node_url("", &tree.nodes[4]), "/sub/page.html");
        // The folder named as a link is followed: the user chose it.
        let named = dir.path().join("named");
        std::os::unix::fs::symlink(&root, &named).unwrap();
        assert_eq!(Tree::of_folder(&named).unwrap().nodes.len(), 5);
        assert!(matches!(
            Tree::of_folder(&root.join("index.html")),
            Err(TreeError::NotAFolder(_))
        ));
    }
}
