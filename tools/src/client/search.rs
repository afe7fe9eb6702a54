//! `arca find` through the server: `GET /api/v1/restore-points/search`
//! over the restore points the caller may read, printed as the local
//! command prints a datastore's matches ([`crate::found`]).

use anyhow::Result;
use arca_model::api::SearchResult;

use super::restore_points::enc;
use super::Api;
use crate::found::FindArgs;
use crate::Cli;

/// The query string of a search.
fn query(a: &FindArgs) -> String {
    let mut q = format!("pattern={}&limit={}", enc(&a.pattern), a.limit);
    if let Some(s) = &a.source {
        q += &format!("&source={}", enc(s));
    }
    if let Some(t) = a.since {
        q += &format!("&since={t}");
    }
    if let Some(t) = a.until {
        q += &format!("&until={t}");
    }
    if a.ignore_case {
        q += "&ignore_case=true";
    }
    if a.images {
        q += "&images=true";
    }
    q
}

/// `arca find --server`.
pub fn find(cli: &Cli, a: &FindArgs) -> Result<u8> {
    let api = Api::new(cli)?;
    let r: SearchResult = api.get(
        &format!("/restore-points/search?{}", query(a)),
        "a search result",
    )?;
    crate::found::print(cli.json, &r, a.limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_carries_every_option_encoded() {
        let a = FindArgs {
            pattern: "home/**/*.pdf".into(),
            source: Some("my docs".into()),
            since: Some(10),
            until: Some(20),
            limit: 5,
            ignore_case: true,
            images: true,
        };
        assert_eq!(
            query(&a),
            "pattern=home%2F%2A%2A%2F%2A.pdf&limit=5&source=my%20docs&since=10&until=20&ignore_case=true&images=true"
        );
    }
}
