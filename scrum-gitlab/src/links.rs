//! An issue's blockers as GitLab records them: its issue links of type
//! `is_blocked_by` (`GET /projects/:id/issues/:iid/links`), named as task ids
//! `gitlab:group/project#iid`, also across projects.

use scrum_core::{RepoName, Result, TaskId};

use crate::client::{GitLabClient, issue_path};
use crate::config::FORGE;
use crate::wire::LinkedIssue;

impl GitLabClient {
    /// See [`scrum_core::IssueSource::blocked_by`].
    pub(crate) async fn blockers(&self, id: &TaskId) -> Result<Vec<TaskId>> {
        let path = format!("{}/links", issue_path(id)?);
        let links: Vec<LinkedIssue> = self
            .inner
            .transport
            .get_json(&path, &format!("reading the links of {id}"))
            .await?;
        Ok(links
            .iter()
            .filter(|l| l.link_type == "is_blocked_by")
            .filter_map(linked_id)
            .collect())
    }
}

/// The linked issue's id, from its full reference (`group/sub/project#12`), else
/// its web URL (`…/group/sub/project/-/issues/12`).
fn linked_id(link: &LinkedIssue) -> Option<TaskId> {
    let path = match (&link.references, &link.web_url) {
        (Some(r), _) => r.full.rsplit_once('#')?.0.to_string(),
        (None, Some(url)) => {
            let before = url.split_once("/-/issues/")?.0;
            let rest = before.split_once("://")?.1;
            rest.split_once('/')?.1.to_string()
        }
        (None, None) => return None,
    };
    let repo: RepoName = format!("{FORGE}:{path}").parse().ok()?;
    Some(TaskId::in_repo(&repo, link.iid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::References;

    #[test]
    fn a_link_names_its_issue_by_reference_or_url() {
        let by_ref = LinkedIssue {
            iid: 12,
            link_type: "is_blocked_by".into(),
            references: Some(References {
                full: "group/sub/project#12".into(),
            }),
            web_url: None,
        };
        assert_eq!(
            linked_id(&by_ref).unwrap().to_string(),
            "gitlab:group/sub/project#12"
        );
        let by_url = LinkedIssue {
            iid: 3,
            link_type: "is_blocked_by".into(),
            references: None,
            web_url: Some("https://gitlab.example/group/project/-/issues/3".into()),
        };
        assert_eq!(
            linked_id(&by_url).unwrap().to_string(),
            "gitlab:group/project#3"
        );
    }
}
