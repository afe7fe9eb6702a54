//! Server → node queries and their answers ([`crate::query`]) to and from
//! the `WatchQueries` and `Answer` messages. What the other side sent may
//! be anything: a query without a kind, an answer without a case or with
//! an unknown enum value is an error naming it.

use arca_model::api::{self, TreeEntryKind};

use super::files;
use super::{enum_from_pb, parse};
use crate::pb;
use crate::query::{Answer, Query, QueryError, QueryErrorCode, Reply, TreeQuery};

/// A query as the server sends it, named `id`.
pub fn query_to_pb(id: u64, q: &Query) -> pb::Query {
    let query = match q {
        Query::Tree(t) => pb::query::Query::Tree(pb::TreeQuery {
            restore_point: t.restore_point.to_hex(),
            datastore: t.datastore.clone(),
            path: t.path.clone(),
            recursive: t.recursive,
            offset: t.offset,
            limit: t.limit,
        }),
        Query::Find(f) => pb::query::Query::Find(super::find::find_query_to_pb(f)),
        Query::Stat(f) => pb::query::Query::Stat(pb::StatQuery {
            file: Some(files::file_ref_to_pb(f)),
        }),
        Query::List(l) => pb::query::Query::List(files::list_to_pb(l)),
        Query::Read(r) => pb::query::Query::Read(files::read_to_pb(r)),
        Query::ReadLink(f) => pb::query::Query::ReadLink(pb::ReadLinkQuery {
            file: Some(files::file_ref_to_pb(f)),
        }),
    };
    pb::Query {
        id,
        query: Some(query),
    }
}

/// A query as the node receives it: its id (to answer even a query it
/// cannot read), and the query or why it cannot be read.
pub fn query_from_pb(q: pb::Query) -> (u64, Result<Query, String>) {
    let r = match q.query {
        None => Err("a query of no known kind (is this node older than the server?)".to_string()),
        Some(pb::query::Query::Tree(t)) => {
            parse("restore point id", &t.restore_point).map(|restore_point| {
                Query::Tree(TreeQuery {
                    restore_point,
                    datastore: t.datastore,
                    path: t.path,
                    recursive: t.recursive,
                    offset: t.offset,
                    limit: t.limit,
                })
            })
        }
        Some(pb::query::Query::Find(f)) => super::find::find_query_from_pb(f).map(Query::Find),
        Some(pb::query::Query::Stat(s)) => files::file_ref_from_pb(s.file).map(Query::Stat),
        Some(pb::query::Query::List(l)) => files::list_from_pb(l).map(Query::List),
        Some(pb::query::Query::Read(r)) => files::read_from_pb(r).map(Query::Read),
        Some(pb::query::Query::ReadLink(r)) => files::file_ref_from_pb(r.file).map(Query::ReadLink),
    };
    (q.id, r)
}

/// The node's reply to query `id`, as it sends it.
pub fn answer_to_pb(id: u64, r: &Reply) -> pb::AnswerRequest {
    let answer = match r {
        Ok(Answer::Tree(page)) => pb::answer_request::Answer::Tree(tree_page_to_pb(page)),
        Ok(Answer::Find(r)) => pb::answer_request::Answer::Find(super::find::find_result_to_pb(r)),
        Ok(Answer::Stat(a)) => pb::answer_request::Answer::Stat(files::attr_to_pb(a)),
        Ok(Answer::List(p)) => pb::answer_request::Answer::List(files::dir_page_to_pb(p)),
        Ok(Answer::Read(d)) => pb::answer_request::Answer::Read(pb::FileData { data: d.clone() }),
        Ok(Answer::ReadLink(t)) => {
            pb::answer_request::Answer::ReadLink(pb::LinkTarget { target: t.clone() })
        }
        Err(e) => pb::answer_request::Answer::Error(pb::QueryError {
            code: error_code_to_pb(e.code) as i32,
            message: e.message.clone(),
        }),
    };
    pb::AnswerRequest {
        id,
        answer: Some(answer),
    }
}

/// A node's reply as the server receives it: the query's id and the
/// reply, or why the message cannot be read.
pub fn answer_from_pb(a: pb::AnswerRequest) -> Result<(u64, Reply), String> {
    let reply = match a
        .answer
        .ok_or("an answer with neither a result nor an error")?
    {
        pb::answer_request::Answer::Tree(p) => Ok(Answer::Tree(tree_page_from_pb(p)?)),
        pb::answer_request::Answer::Find(r) => {
            Ok(Answer::Find(super::find::find_result_from_pb(r)?))
        }
        pb::answer_request::Answer::Stat(a) => Ok(Answer::Stat(files::attr_from_pb(a)?)),
        pb::answer_request::Answer::List(p) => Ok(Answer::List(files::dir_page_from_pb(p)?)),
        pb::answer_request::Answer::Read(d) => Ok(Answer::Read(files::data_from_pb(d)?)),
        pb::answer_request::Answer::ReadLink(t) => Ok(Answer::ReadLink(t.target)),
        pb::answer_request::Answer::Error(e) => Err(QueryError {
            code: error_code_from_pb(e.code)?,
            message: e.message,
        }),
    };
    Ok((a.id, reply))
}

fn error_code_to_pb(c: QueryErrorCode) -> pb::QueryErrorCode {
    match c {
        QueryErrorCode::Invalid => pb::QueryErrorCode::Invalid,
        QueryErrorCode::NotFound => pb::QueryErrorCode::NotFound,
        QueryErrorCode::Conflict => pb::QueryErrorCode::Conflict,
        QueryErrorCode::Internal => pb::QueryErrorCode::Internal,
        QueryErrorCode::NotADirectory => pb::QueryErrorCode::NotADirectory,
        QueryErrorCode::IsADirectory => pb::QueryErrorCode::IsADirectory,
        QueryErrorCode::WrongKind => pb::QueryErrorCode::WrongKind,
    }
}

fn error_code_from_pb(v: i32) -> Result<QueryErrorCode, String> {
    enum_from_pb(v, "query error code", |c: pb::QueryErrorCode| match c {
        pb::QueryErrorCode::Unspecified => None,
        pb::QueryErrorCode::Invalid => Some(QueryErrorCode::Invalid),
        pb::QueryErrorCode::NotFound => Some(QueryErrorCode::NotFound),
        pb::QueryErrorCode::Conflict => Some(QueryErrorCode::Conflict),
        pb::QueryErrorCode::Internal => Some(QueryErrorCode::Internal),
        pb::QueryErrorCode::NotADirectory => Some(QueryErrorCode::NotADirectory),
        pb::QueryErrorCode::IsADirectory => Some(QueryErrorCode::IsADirectory),
        pb::QueryErrorCode::WrongKind => Some(QueryErrorCode::WrongKind),
    })
}

/// A tree page as a node sends it.
pub fn tree_page_to_pb(p: &api::TreePage) -> pb::TreePage {
    pb::TreePage {
        path: p.path.clone(),
        entries: p.entries.iter().map(tree_entry_to_pb).collect(),
        next_offset: p.next_offset,
    }
}

/// A tree page as the server receives it.
pub fn tree_page_from_pb(p: pb::TreePage) -> Result<api::TreePage, String> {
    Ok(api::TreePage {
        path: p.path,
        entries: p
            .entries
            .into_iter()
            .map(tree_entry_from_pb)
            .collect::<Result<_, String>>()?,
        next_offset: p.next_offset,
    })
}

/// One tree entry as a node sends it.
pub fn tree_entry_to_pb(e: &api::TreeEntry) -> pb::TreeEntry {
    pb::TreeEntry {
        name: e.name.clone(),
        path: e.path.clone(),
        kind: kind_to_pb(e.kind) as i32,
        size: e.size,
        mode: e.mode,
        mtime: e.mtime,
        uid: e.uid,
        gid: e.gid,
        link_target: e.link_target.clone(),
    }
}

/// An entry's kind as sent.
pub(super) fn kind_to_pb(k: TreeEntryKind) -> pb::TreeEntryKind {
    match k {
        TreeEntryKind::File => pb::TreeEntryKind::File,
        TreeEntryKind::Dir => pb::TreeEntryKind::Dir,
        TreeEntryKind::Symlink => pb::TreeEntryKind::Symlink,
        TreeEntryKind::Fifo => pb::TreeEntryKind::Fifo,
        TreeEntryKind::Chardev => pb::TreeEntryKind::Chardev,
        TreeEntryKind::Blockdev => pb::TreeEntryKind::Blockdev,
        TreeEntryKind::Socket => pb::TreeEntryKind::Socket,
        TreeEntryKind::Other => pb::TreeEntryKind::Other,
    }
}

/// An entry's kind as received, or why it is none.
pub(super) fn kind_from_pb(v: i32) -> Result<TreeEntryKind, String> {
    enum_from_pb(v, "tree entry kind", |k: pb::TreeEntryKind| match k {
        pb::TreeEntryKind::Unspecified => None,
        pb::TreeEntryKind::File => Some(TreeEntryKind::File),
        pb::TreeEntryKind::Dir => Some(TreeEntryKind::Dir),
        pb::TreeEntryKind::Symlink => Some(TreeEntryKind::Symlink),
        pb::TreeEntryKind::Fifo => Some(TreeEntryKind::Fifo),
        pb::TreeEntryKind::Chardev => Some(TreeEntryKind::Chardev),
        pb::TreeEntryKind::Blockdev => Some(TreeEntryKind::Blockdev),
        pb::TreeEntryKind::Socket => Some(TreeEntryKind::Socket),
        pb::TreeEntryKind::Other => Some(TreeEntryKind::Other),
    })
}

fn tree_entry_from_pb(e: pb::TreeEntry) -> Result<api::TreeEntry, String> {
    let kind = kind_from_pb(e.kind)?;
    Ok(api::TreeEntry {
        name: e.name,
        path: e.path,
        kind,
        size: e.size,
        mode: e.mode,
        mtime: e.mtime,
        uid: e.uid,
        gid: e.gid,
        link_target: e.link_target,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::query::QueryKind;

    fn page() -> api::TreePage {
        let entry = |name: &str, kind, link: Option<&str>| api::TreeEntry {
            name: name.into(),
            path: format!("dir/{name}"),
            kind,
            size: 20_000,
            mode: 0o644,
            mtime: -5,
            uid: 1000,
            gid: u32::MAX,
            link_target: link.map(str::to_string),
        };
        api::TreePage {
            path: "dir".into(),
            entries: vec![
                entry("a", TreeEntryKind::File, None),
                entry("b", TreeEntryKind::Dir, None),
                entry("l", TreeEntryKind::Symlink, Some("../t")),
                entry("f", TreeEntryKind::Fifo, None),
                entry("c", TreeEntryKind::Chardev, None),
                entry("k", TreeEntryKind::Blockdev, None),
                entry("s", TreeEntryKind::Socket, None),
                entry("o", TreeEntryKind::Other, None),
                // An empty link target is not an absent one.
                entry("e", TreeEntryKind::Symlink, Some("")),
            ],
            next_offset: Some(9),
        }
    }

    /// Through the bytes on the wire, as the other side reads them.
    fn wire<M: Message + Default>(m: M) -> M {
        M::decode(m.encode_to_vec().as_slice()).unwrap()
    }

    #[test]
    fn queries_round_trip() {
        let q = Query::Tree(TreeQuery {
            restore_point: "ab".repeat(32).parse().unwrap(),
            datastore: "alpha/default".into(),
            path: "dir/sub".into(),
            recursive: true,
            offset: 7,
            limit: 10_000,
        });
        let (id, back) = query_from_pb(wire(query_to_pb(42, &q)));
        assert_eq!(id, 42);
        assert_eq!(back.unwrap(), q);
        assert_eq!(q.kind(), QueryKind::Tree);
        assert_eq!(q.kind().to_string(), "tree");
    }

    #[test]
    fn answers_round_trip() {
        let last = api::TreePage {
            path: String::new(),
            entries: vec![],
            next_offset: None,
        };
        for r in [Ok(Answer::Tree(page())), Ok(Answer::Tree(last))] {
            let (id, back) = answer_from_pb(wire(answer_to_pb(3, &r))).unwrap();
            assert_eq!(id, 3);
            assert_eq!(back, r);
        }
        for code in [
            QueryErrorCode::Invalid,
            QueryErrorCode::NotFound,
            QueryErrorCode::Conflict,
            QueryErrorCode::Internal,
        ] {
            let r: Reply = Err(QueryError::new(code, "no path \"x\""));
            let (_, back) = answer_from_pb(wire(answer_to_pb(u64::MAX, &r))).unwrap();
            assert_eq!(back, r);
        }
    }

    /// What cannot be read is an error naming it; a query that cannot be
    /// read still has its id, so the node can answer it with the reason.
    #[test]
    fn unreadable_messages_are_errors() {
        let (id, r) = query_from_pb(pb::Query { id: 5, query: None });
        assert_eq!(id, 5);
        assert!(r.unwrap_err().contains("no known kind"));
        let mut q = query_to_pb(
            6,
            &Query::Tree(TreeQuery {
                restore_point: "cd".repeat(32).parse().unwrap(),
                datastore: "d".into(),
                path: String::new(),
                recursive: false,
                offset: 0,
                limit: 1,
            }),
        );
        if let Some(pb::query::Query::Tree(t)) = q.query.as_mut() {
            t.restore_point = "nope".into();
        }
        let (id, r) = query_from_pb(q);
        assert_eq!(id, 6);
        assert!(r.unwrap_err().contains("restore point id"));

        let none = pb::AnswerRequest {
            id: 1,
            answer: None,
        };
        assert!(answer_from_pb(none).unwrap_err().contains("neither"));
        let bad_code = pb::AnswerRequest {
            id: 1,
            answer: Some(pb::answer_request::Answer::Error(pb::QueryError {
                code: 99,
                message: "m".into(),
            })),
        };
        assert!(answer_from_pb(bad_code)
            .unwrap_err()
            .contains("unknown query error code 99"));
        let unspecified = pb::AnswerRequest {
            id: 1,
            answer: Some(pb::answer_request::Answer::Error(pb::QueryError {
                code: 0,
                message: "m".into(),
            })),
        };
        assert!(answer_from_pb(unspecified)
            .unwrap_err()
            .contains("unspecified"));
        let mut p = tree_page_to_pb(&page());
        p.entries[1].kind = 0;
        let bad_kind = pb::AnswerRequest {
            id: 1,
            answer: Some(pb::answer_request::Answer::Tree(p)),
        };
        assert!(answer_from_pb(bad_kind)
            .unwrap_err()
            .contains("tree entry kind"));
    }

    fn file(path: &[u8]) -> crate::query::FileRef {
        crate::query::FileRef {
            restore_point: "ef".repeat(32).parse().unwrap(),
            datastore: "far/default".into(),
            path: path.to_vec(),
        }
    }

    fn attr(kind: TreeEntryKind) -> crate::query::FileAttr {
        crate::query::FileAttr {
            kind,
            size: u64::MAX,
            mode: 0o4755,
            uid: 1,
            gid: 2,
            nlink: 3,
            mtime_ns: -1,
            atime_ns: 5,
            ctime_ns: i64::MAX,
            ino: 7,
            rdev: 8,
        }
    }

    /// The file queries and their answers, through the wire; names and
    /// paths that are not UTF-8 stay as they are.
    #[test]
    fn file_queries_and_answers_round_trip() {
        use crate::query::{DirEntry, DirPage, ListQuery, ReadQuery};
        for q in [
            Query::Stat(file(b"dir/\xff name")),
            Query::ReadLink(file(b"")),
            Query::List(ListQuery {
                dir: file(b"d"),
                start: 12,
                limit: 1000,
            }),
            Query::Read(ReadQuery {
                file: file(b"big.bin"),
                offset: 1 << 40,
                length: 1 << 20,
            }),
        ] {
            let (id, back) = query_from_pb(wire(query_to_pb(9, &q)));
            assert_eq!(id, 9);
            assert_eq!(back.unwrap(), q);
        }
        let page = DirPage {
            entries: vec![
                DirEntry {
                    name: b"\xfe\xff".to_vec(),
                    attr: attr(TreeEntryKind::File),
                },
                DirEntry {
                    name: b"d".to_vec(),
                    attr: attr(TreeEntryKind::Dir),
                },
            ],
            end: true,
        };
        for r in [
            Ok(Answer::Stat(attr(TreeEntryKind::Blockdev))),
            Ok(Answer::List(page)),
            Ok(Answer::Read(vec![7; 1 << 20])),
            Ok(Answer::Read(Vec::new())),
            Ok(Answer::ReadLink(b"../t".to_vec())),
            Err(QueryError::new(QueryErrorCode::NotADirectory, "n")),
            Err(QueryError::new(QueryErrorCode::IsADirectory, "i")),
            Err(QueryError::new(QueryErrorCode::WrongKind, "w")),
        ] {
            let (_, back) = answer_from_pb(wire(answer_to_pb(4, &r))).unwrap();
            assert_eq!(back, r);
        }
    }

    /// What the server cannot take from a node is an error naming it: a
    /// name that is not one component, more than 1 MiB of data, a kind
    /// "other", a query without its file.
    #[test]
    fn bad_file_answers_are_refused() {
        let entry = |name: &[u8], kind| pb::DirEntry {
            name: name.to_vec(),
            attr: Some(super::files::attr_to_pb(&attr(kind))),
        };
        for name in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            let a = pb::AnswerRequest {
                id: 1,
                answer: Some(pb::answer_request::Answer::List(pb::DirPage {
                    entries: vec![entry(name, TreeEntryKind::File)],
                    end: true,
                })),
            };
            assert!(
                answer_from_pb(a).unwrap_err().contains("not a file name"),
                "{name:?}"
            );
        }
        let a = pb::AnswerRequest {
            id: 1,
            answer: Some(pb::answer_request::Answer::Read(pb::FileData {
                data: vec![0; (1 << 20) + 1],
            })),
        };
        assert!(answer_from_pb(a).unwrap_err().contains("bytes read"));
        let a = pb::AnswerRequest {
            id: 1,
            answer: Some(pb::answer_request::Answer::Stat(super::files::attr_to_pb(
                &attr(TreeEntryKind::Other),
            ))),
        };
        assert!(answer_from_pb(a).unwrap_err().contains("other"));
        let q = pb::Query {
            id: 2,
            query: Some(pb::query::Query::Read(pb::ReadQuery {
                file: None,
                offset: 0,
                length: 1,
            })),
        };
        let (id, r) = query_from_pb(q);
        assert_eq!(id, 2);
        assert!(r.unwrap_err().contains("without its file"));
    }
}
