//! The data every crate speaks: task ids, issues, tasks, leases, outcomes.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

mod legacy;
mod task;

pub use legacy::TaskV5;
pub use task::{Attempt, Holds, Outcome, Run, RunCause, Status, Stop, Task};

/// Milliseconds since the Unix epoch.
///
/// Backends and the state machine take `now` as an argument instead of reading a
/// clock, so every time-based rule can be tested with a fixed or paused clock.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// A time no clock reaches (the last millisecond of the year 9999): the
    /// `not_before` of a task held for review, which no backend hands out.
    pub const NEVER: Timestamp = Timestamp(253_402_300_799_999);

    /// The time `d` after this one (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// How long after `earlier` this is; zero when it is not later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// The time as RFC 3339 in UTC with millisecond precision, e.g. `2026-11-24T03:20:43.123Z`.
    pub fn to_rfc3339(self) -> String {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// Reads a time as forges write them: RFC 3339 (`2011-04-22T13:33:48Z`, with
    /// fractions or an offset such as `+02:00`), or GitLab's older
    /// `2011-04-22 13:33:48 UTC`. `None` when it is not one, or names no zone.
    ///
    /// ```
    /// use scrum_core::Timestamp;
    /// let t = Timestamp::parse_rfc3339("2011-04-22T15:33:48.5+02:00").unwrap();
    /// assert_eq!(t, Timestamp(1_303_479_228_500));
    /// assert_eq!(Timestamp::parse_rfc3339("2011-04-22 13:33:48 UTC"), Some(Timestamp(1_303_479_228_000)));
    /// assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    /// assert!(Timestamp::parse_rfc3339("2011-04-22T13:33:48").is_none());
    /// ```
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let s = s.trim();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let separators = (s.get(4..5)?, s.get(7..8)?, s.get(10..11)?);
        if separators.0 != "-" || separators.1 != "-" || !matches!(separators.2, "T" | "t" | " ") {
            return None;
        }
        if s.get(13..14)? != ":" || s.get(16..17)? != ":" {
            return None;
        }
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut rest = s.get(19..)?;
        let mut ms = 0;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let first3: String = frac[..digits]
                .chars()
                .chain("000".chars())
                .take(3)
                .collect();
            ms = first3.parse().ok()?;
            rest = &frac[digits..];
        }
        let offset_secs = match rest {
            "Z" | "z" | " UTC" => 0,
            _ => {
                let sign = match rest.get(0..1)? {
                    "+" => 1,
                    "-" => -1,
                    _ => return None,
                };
                if rest.len() != 6 || rest.get(3..4)? != ":" {
                    return None;
                }
                let oh: i64 = rest.get(1..3)?.parse().ok()?;
                let om: i64 = rest.get(4..6)?.parse().ok()?;
                sign * (oh * 3600 + om * 60)
            }
        };
        let days = days_from_civil(y, mo, d);
        let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
        Some(Timestamp(secs * 1000 + ms))
    }
}

/// Howard Hinnant's `days_from_civil`: (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// One issue of one repository: `owner/repo#number`. Also the id of the task that
/// works on it, because two repositories have the same issue numbers.
///
/// The repository part is a [`RepoName`]: GitHub's `owner/repo` as it is (two
/// segments of letters, digits, `.`, `_` or `-`, up to 100 characters each), or a
/// project of another forge named with its forge and full path,
/// `gitlab:group/sub/project` (two to twenty segments). The number is positive. A
/// tracker of its own names its projects the same way, for example `jira/PROJ#123`
/// or `local/todo#3`.
///
/// ```
/// use scrum_core::TaskId;
/// let id: TaskId = "acme/widgets#42".parse().unwrap();
/// assert_eq!(id.repo(), "acme/widgets");
/// assert_eq!(id.number(), 42);
/// assert_eq!(id.to_string(), "acme/widgets#42");
/// assert!("42".parse::<TaskId>().is_err());
/// let lab: TaskId = "gitlab:group/sub/project#12".parse().unwrap();
/// assert_eq!(lab.repo_name().forge(), "gitlab");
/// assert_eq!(lab.repo_name().path(), "group/sub/project");
/// assert_eq!(lab.repo_name().owner(), "group/sub");
/// assert_eq!(lab.repo_name().name(), "project");
/// assert!("gitlab:project#1".parse::<TaskId>().is_err());
/// assert!("group/sub/project#1".parse::<TaskId>().is_err(), "only a forge's names nest");
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    // An `Arc<str>`: task ids are cloned on every queue operation, and a repository
    // name shared by thousands of tasks should cost one allocation.
    repo: Arc<str>,
    number: u64,
}

impl TaskId {
    /// The id of issue `number` in `repo` (`owner/name`). Fails on a malformed
    /// repository name or issue number 0.
    pub fn new(repo: &str, number: u64) -> Result<TaskId, Error> {
        validate_repo(repo)?;
        if number == 0 {
            return Err(Error::invalid("issue numbers start at 1"));
        }
        Ok(TaskId {
            repo: Arc::from(repo),
            number,
        })
    }

    /// The id for `number` in a repository already validated (shares its allocation).
    pub fn in_repo(repo: &RepoName, number: u64) -> TaskId {
        TaskId {
            repo: repo.0.clone(),
            number,
        }
    }

    /// `owner/name`.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The repository as a shareable name.
    pub fn repo_name(&self) -> RepoName {
        RepoName(self.repo.clone())
    }

    /// The issue number.
    pub fn number(&self) -> u64 {
        self.number
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for TaskId {
    type Err = Error;
    fn from_str(s: &str) -> Result<TaskId, Error> {
        let (repo, number) = s.rsplit_once('#').ok_or_else(|| {
            Error::invalid(format!(
                "task id {s:?} is not of the form owner/repo#number"
            ))
        })?;
        let number = number
            .parse()
            .map_err(|_| Error::invalid(format!("task id {s:?} has no valid issue number")))?;
        TaskId::new(repo, number)
    }
}

impl Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Pieced together rather than through `Display`: every stored step writes
        // one, and the formatter cost more than the rest of the id.
        let number = self.number.to_string();
        let mut id = String::with_capacity(self.repo.len() + 1 + number.len());
        id.push_str(&self.repo);
        id.push('#');
        id.push_str(&number);
        s.serialize_str(&id)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TaskId, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The forge a repository name without a `forge:` prefix belongs to.
pub const GITHUB: &str = "github";

/// A validated repository name: GitHub's `owner/name`, or another forge's project
/// as `forge:namespace/…/name` (for example `gitlab:group/sub/project`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(Arc<str>);

impl RepoName {
    /// The name as written: `owner/name` or `forge:path`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The forge: its prefix (`gitlab`), or [`GITHUB`] for a name without one.
    pub fn forge(&self) -> &str {
        self.0.split_once(':').map_or(GITHUB, |(f, _)| f)
    }

    /// The path on its forge, without the prefix: `owner/name`, `group/sub/project`.
    pub fn path(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(_, p)| p)
    }

    /// The owner part: everything of the path before its last segment (a GitHub
    /// owner, a GitLab namespace such as `group/sub`).
    pub fn owner(&self) -> &str {
        self.path().rsplit_once('/').map_or("", |(o, _)| o)
    }

    /// The name part: the path's last segment.
    pub fn name(&self) -> &str {
        self.path().rsplit_once('/').map_or("", |(_, n)| n)
    }
}

impl FromStr for RepoName {
    type Err = Error;
    fn from_str(s: &str) -> Result<RepoName, Error> {
        validate_repo(s)?;
        Ok(RepoName(Arc::from(s)))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RepoName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RepoName, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

fn validate_repo(repo: &str) -> Result<(), Error> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    let ok_forge = |f: &str| {
        !f.is_empty() && f.len() <= 20 && f != GITHUB && f.bytes().all(|b| b.is_ascii_lowercase())
    };
    let (segments, most) = match repo.split_once(':') {
        None => (repo, 2),
        Some((forge, path)) if ok_forge(forge) => (path, 20),
        Some(_) => {
            return Err(Error::invalid(format!(
                "repository {repo:?} names no forge: a prefix is lowercase letters, as in gitlab:group/project (GitHub's names have none)"
            )));
        }
    };
    let count = segments.split('/').count();
    if (2..=most).contains(&count) && segments.split('/').all(ok_part) {
        return Ok(());
    }
    Err(Error::invalid(match most {
        2 => format!("repository {repo:?} is not of the form owner/name"),
        _ => format!("repository {repo:?} is not of the form forge:namespace/name"),
    }))
}

/// The name a worker gives itself.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkerId(Arc<str>);

impl WorkerId {
    /// A worker id: 1 to 128 characters of letters, digits, `-`, `_`, `.`, `:` or `@`.
    pub fn new(id: &str) -> Result<WorkerId, Error> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:@".contains(&b));
        if ok {
            Ok(WorkerId(Arc::from(id)))
        } else {
            Err(Error::invalid(format!(
                "worker id {id:?} must be 1-128 characters of letters, digits, '-', '_', '.', ':' or '@'"
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WorkerId {
    type Err = Error;
    fn from_str(s: &str) -> Result<WorkerId, Error> {
        WorkerId::new(s)
    }
}

impl TryFrom<String> for WorkerId {
    type Error = Error;
    fn try_from(s: String) -> Result<WorkerId, Error> {
        WorkerId::new(&s)
    }
}

impl From<WorkerId> for String {
    fn from(w: WorkerId) -> String {
        w.0.to_string()
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// The order in which ready issues are handed out: `priority:critical` first, then
/// high, medium, low, and issues with no priority label last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `priority:critical`
    Critical,
    /// `priority:high`
    High,
    /// `priority:medium`
    Medium,
    /// `priority:low`
    Low,
    /// No priority label.
    None,
}

impl Priority {
    /// The highest priority among `labels` (case-insensitive), or `None`.
    pub fn from_labels<S: AsRef<str>>(labels: &[S]) -> Priority {
        const NAMES: [(&str, Priority); 4] = [
            ("priority:critical", Priority::Critical),
            ("priority:high", Priority::High),
            ("priority:medium", Priority::Medium),
            ("priority:low", Priority::Low),
        ];
        // Claims compute this on every index change: compare without allocating.
        labels
            .iter()
            .filter_map(|l| {
                NAMES
                    .iter()
                    .find(|(name, _)| l.as_ref().eq_ignore_ascii_case(name))
                    .map(|(_, p)| *p)
            })
            .min()
            .unwrap_or(Priority::None)
    }

    /// 0 for critical up to 4 for none: the sort rank backends store.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

/// An open issue that carries the ready label(s): the input of a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyIssue {
    /// `owner/repo#number`.
    pub id: TaskId,
    /// The issue title.
    pub title: String,
    /// The issue body (may be empty).
    #[serde(default)]
    pub body: String,
    /// Every label on the issue.
    #[serde(default)]
    pub labels: Vec<String>,
    /// When the issue was opened: older issues are handed out first.
    pub created_at: Timestamp,
}

impl ReadyIssue {
    /// The issue's priority, from its labels.
    pub fn priority(&self) -> Priority {
        Priority::from_labels(&self.labels)
    }

    /// The branch a worker pushes for this issue: `ai-feature/issue-N`.
    pub fn branch_name(&self) -> String {
        format!("ai-feature/issue-{}", self.id.number())
    }

    /// The digest of the issue's title and body ([`text_digest`]).
    pub fn digest(&self) -> String {
        text_digest(&self.title, &self.body)
    }
}

/// The digest of an issue's text, `sha256:` and 64 hexadecimal digits: what an
/// approval covers and what a worker checks the text it got against. The title's
/// length is hashed before it, so no title and body split the same text two ways.
///
/// ```
/// use scrum_core::model::text_digest;
/// let d = text_digest("Add a widget", "It should spin.");
/// assert!(d.starts_with("sha256:") && d.len() == 7 + 64);
/// assert_ne!(d, text_digest("Add a widget", "It should spin!"));
/// assert_ne!(text_digest("ab", "c"), text_digest("a", "bc"));
/// ```
pub fn text_digest(title: &str, body: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(title.len().to_string().as_bytes());
    h.update(b"\n");
    h.update(title.as_bytes());
    h.update(body.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    push_hex(&mut out, &h.finalize());
    out
}

/// Appends `bytes` as lowercase hexadecimal. By table, not the formatter: a claim
/// formats a digest and a lease token, and `{:02x}` per byte cost five times the
/// hash.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Someone the tracker names as having done something to an issue (applied its
/// ready label, edited it, opened it), and whether they may approve work for an
/// agent: on GitHub, write, maintain or admin permission on the repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Their name on the tracker (a GitHub login).
    pub login: String,
    /// Whether they may approve an issue's text for an agent.
    pub may_approve: bool,
    /// When they did it, when the tracker says.
    #[serde(default)]
    pub at: Option<Timestamp>,
}

impl Person {
    /// The tracker itself vouching for an issue: what a tracker without people or
    /// permissions answers (every issue on it is trusted).
    pub fn tracker() -> Person {
        Person {
            login: "tracker".into(),
            may_approve: true,
            at: None,
        }
    }
}

/// Who approved the text a task works on: the title and body as they were when a
/// person allowed to approve applied the ready label (or made the last edit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Who approved it.
    pub by: String,
    /// When (the label or the edit), when the tracker says.
    #[serde(default)]
    pub at: Option<Timestamp>,
    /// The approved text's [`text_digest`].
    pub digest: String,
}

/// An edit of an issue's text, after its approval, by someone who may not approve:
/// the task is held until a person who may applies the ready label again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditReview {
    /// Who edited it.
    pub editor: String,
    /// When, when the tracker says.
    #[serde(default)]
    pub edited_at: Option<Timestamp>,
    /// The edited text's digest.
    pub digest: String,
    /// When the task was held.
    pub held_at: Timestamp,
}

/// Where a task is in its life. See [`crate::state`] for the transitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for a worker (possibly until a backoff ends).
    Pending,
    /// Held by exactly one worker under a lease.
    InProgress,
    /// Finished successfully. Terminal.
    Completed,
    /// Failed for good. Terminal.
    Failed,
    /// The issue was closed or lost its ready label. Terminal.
    Cancelled,
    /// Waiting for a person to answer the worker's questions (posted on the issue,
    /// labelled needs-clarification). Terminal: the ready label, once back, starts
    /// a new run.
    Parked,
}

impl TaskState {
    /// Completed, Failed, Cancelled and Parked are terminal: no event but a new
    /// run leaves them.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Cancelled | TaskState::Parked
        )
    }

    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 6] = [
        TaskState::Pending,
        TaskState::InProgress,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::Parked,
    ];

    /// The snake_case name used in JSON and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::InProgress => "in_progress",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
            TaskState::Parked => "parked",
        }
    }
}

impl FromStr for TaskState {
    type Err = Error;
    fn from_str(s: &str) -> Result<TaskState, Error> {
        TaskState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::invalid(format!("unknown task state {s:?}")))
    }
}

/// A fencing token: unique to one claim. Every call that changes a task carries it,
/// and a call with a token that is not the task's current one changes nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub u128);

impl LeaseToken {
    /// A fresh random token: 128 bits from a per-thread generator seeded by the
    /// operating system, so tokens are unique across claims, threads and processes
    /// without a system call per claim.
    pub fn random() -> LeaseToken {
        thread_local! {
            static RNG: std::cell::RefCell<fastrand::Rng> = std::cell::RefCell::new(fastrand::Rng::with_seed(os_seed()));
        }
        RNG.with(|r| LeaseToken(r.borrow_mut().u128(..)))
    }
}

/// 64 random bits from the operating system (or, if it fails, from fastrand's own
/// seeding, which mixes the time and the thread).
fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => fastrand::u64(..),
    }
}

impl LeaseToken {
    /// The token as 32 lowercase hexadecimal digits.
    fn hex(&self) -> String {
        let mut hex = String::with_capacity(32);
        push_hex(&mut hex, &self.0.to_be_bytes());
        hex
    }
}

impl fmt::Display for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for LeaseToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseToken({self})")
    }
}

impl FromStr for LeaseToken {
    type Err = Error;
    fn from_str(s: &str) -> Result<LeaseToken, Error> {
        if s.len() != 32 {
            return Err(Error::invalid("lease_token must be 32 hexadecimal digits"));
        }
        u128::from_str_radix(s, 16)
            .map(LeaseToken)
            .map_err(|_| Error::invalid("lease_token must be 32 hexadecimal digits"))
    }
}

impl Serialize for LeaseToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for LeaseToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<LeaseToken, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A worker's hold on a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The fencing token of this claim.
    pub token: LeaseToken,
    /// Who holds it.
    pub worker: WorkerId,
    /// When it was claimed.
    pub claimed_at: Timestamp,
    /// When it lapses unless renewed by a heartbeat.
    pub expires_at: Timestamp,
    /// The latest it can be renewed to: claim time plus the maximum run time.
    pub deadline: Timestamp,
    /// What the claimer asked for: heartbeats, or the whole run time (a client that
    /// never heartbeats). Leases stored before this was recorded read as `Heartbeat`.
    #[serde(default)]
    pub kind: LeaseKind,
}

/// How long a claim's lease lasts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaseKind {
    /// One lease period, renewed by heartbeats.
    #[default]
    Heartbeat,
    /// The whole maximum run time: for clients that never send heartbeats.
    RunTime,
}

/// What a worker reports when it finished an issue.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The pull request the worker opened.
    pub pr_url: Option<String>,
    /// What the run cost in US dollars, when known.
    pub cost_usd: Option<f64>,
    /// Model tokens the run used, when known.
    pub tokens: Option<u64>,
    /// Times the review sent the work back before approving it, when the worker
    /// ran a workflow with a review (reports stored before this read as `None`).
    #[serde(default)]
    pub revisions: Option<u32>,
}

/// What a worker reports when an attempt failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong (redacted before it reaches an issue comment).
    pub reason: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// What the failed attempt cost in US dollars, when known.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Model tokens the failed attempt used, when known.
    #[serde(default)]
    pub tokens: Option<u64>,
}

/// What a worker reports when the issue needs a person's answers before any work:
/// the questions go on the issue, and the task is parked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Clarification {
    /// What to ask, one question each.
    pub questions: Vec<String>,
    /// Why the issue cannot be done as written.
    #[serde(default)]
    pub reasoning: String,
    /// What the check cost in US dollars, when known.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Model tokens the check used, when known.
    #[serde(default)]
    pub tokens: Option<u64>,
}

/// How a lease ended: a repeat of the same call with the same token is a no-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseEnd {
    /// The worker completed the task.
    Completed,
    /// The worker reported a failure.
    Failed,
    /// The worker handed the task back.
    Released,
    /// The lease lapsed.
    Expired,
    /// The task was cancelled while held.
    Cancelled,
    /// The worker asked for clarification.
    Parked,
}

/// What a claim hands a worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The task.
    pub task: TaskId,
    /// The issue to work on.
    pub issue: Arc<ReadyIssue>,
    /// The branch to push: `ai-feature/issue-N`.
    pub branch_name: String,
    /// The lease's fencing token.
    pub lease_token: LeaseToken,
    /// When the lease lapses unless renewed.
    pub lease_expires_at: Timestamp,
    /// This attempt's number (1-based).
    pub attempt: u32,
    /// The most attempts this run may spend.
    pub max_attempts: u32,
    /// How often the worker should send a heartbeat.
    pub heartbeat_interval: Duration,
    /// The [`text_digest`] of `issue`'s title and body: the approved text. The
    /// worker checks what it got against it before it runs anything.
    #[serde(default)]
    pub text_digest: Option<String>,
    /// What is left of the issue's budget (`ISSUE_BUDGET_USD`, less what its
    /// earlier attempts cost) and of its repository's monthly one, the smaller, in
    /// US dollars, so the agent can cap itself; `None` without budgets.
    #[serde(default)]
    pub budget_left_usd: Option<f64>,
    /// On a follow-up run ([`crate::follow_up`]): the pull request, the cause (a
    /// failed check, a conflict, a request for changes, a comment) and the
    /// feedback, for the agent to work on, on the same branch. `rework` from
    /// orchestrators before follow-ups.
    #[serde(default, alias = "rework")]
    pub follow_up: Option<crate::follow_up::FollowUp>,
    /// A short-lived token for the task's repository, to push and open the pull
    /// request with, when the orchestrator hands them out (a GitHub App); the
    /// worker's own token otherwise. Never serialized.
    #[serde(skip)]
    pub repo_token: Option<crate::credentials::RepoToken>,
}

impl Assignment {
    /// Whether the title and body carried match the digest (an assignment without
    /// one, from an orchestrator that sends none, matches).
    pub fn text_matches(&self) -> bool {
        self.text_digest
            .as_ref()
            .is_none_or(|d| *d == self.issue.digest())
    }
}

impl Assignment {
    /// The assignment for a task just claimed. Fails if the task holds no lease.
    pub fn from_claimed(task: &Task, heartbeat_interval: Duration) -> Result<Assignment, Error> {
        let lease = task
            .lease()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a claimed task has no lease"))?;
        Ok(Assignment {
            task: task.id.clone(),
            issue: task.issue.clone(),
            branch_name: task.issue.branch_name(),
            lease_token: lease.token,
            lease_expires_at: lease.expires_at,
            attempt: task.attempts(),
            max_attempts: task.max_attempts(),
            heartbeat_interval,
            text_digest: Some(task.issue.digest()),
            budget_left_usd: None,
            follow_up: task.follow_up().cloned(),
            repo_token: None,
        })
    }
}

/// What a heartbeat tells the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The lease's new expiry.
    pub lease_expires_at: Timestamp,
    /// The issue was closed or unlabelled: stop and release the task.
    pub cancel: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_488_043_123).to_rfc3339(),
            "2026-11-24T02:40:43.123Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn task_ids_reject_malformed_input() {
        for bad in [
            "",
            "#1",
            "acme#1",
            "acme/#1",
            "/w#1",
            "acme/widgets#0",
            "acme/widgets#x",
            "a b/c#1",
        ] {
            assert!(bad.parse::<TaskId>().is_err(), "{bad:?} was accepted");
        }
        let id: TaskId = "acme/widgets#7".parse().unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"acme/widgets#7\"");
    }

    #[test]
    fn priority_takes_the_highest_label() {
        assert_eq!(
            Priority::from_labels(&["bug", "priority:low", "Priority:High"]),
            Priority::High
        );
        assert_eq!(Priority::from_labels::<&str>(&[]), Priority::None);
        assert!(Priority::Critical < Priority::None);
    }

    #[test]
    fn lease_tokens_round_trip_and_differ() {
        let a = LeaseToken::random();
        assert_ne!(a, LeaseToken::random());
        assert_eq!(a.to_string().parse::<LeaseToken>().unwrap(), a);
        assert!("xyz".parse::<LeaseToken>().is_err());
        let t = LeaseToken(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(t.to_string(), format!("{:032x}", t.0));
        assert_eq!(LeaseToken(10).to_string(), format!("{:032x}", 10));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{:032x}\"", t.0));
        assert_eq!(serde_json::from_str::<LeaseToken>(&json).unwrap(), t);
    }

    #[test]
    fn a_text_digest_is_sha256_in_lowercase_hex() {
        assert_eq!(
            text_digest("Add a widget", "It should spin."),
            "sha256:7d9d309725d4fd654adcd32812bc588deae46044ce2710eb6687d8267ce957ad"
        );
    }

    #[test]
    fn worker_ids_are_validated() {
        assert!(WorkerId::new("worker-1").is_ok());
        assert!(WorkerId::new("").is_err());
        assert!(WorkerId::new("a b").is_err());
        assert!(serde_json::from_str::<WorkerId>("\"bad id\"").is_err());
    }
}
