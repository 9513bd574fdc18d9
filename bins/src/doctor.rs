//! What `scrum-orchestrator doctor` and `scrum-worker doctor` print: one line per
//! check, passed (`ok`), failed (`FAIL`, with the fix after a dash) or not run
//! (`skip`, with why), and whether any failed.
//!
//! The checks themselves are `orchestrator::doctor` and `worker::doctor`.

use std::fmt;

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It passed.
    Ok,
    /// It failed; the line says how to fix it.
    Fail,
    /// It did not apply, or could not be run; the line says why.
    Skip,
}

/// One line of the report: `ok   github: acme/widgets token can read and write issues`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// How it ended.
    pub verdict: Verdict,
    /// What was checked: `github`, `labels`, `webhook`, `store`, `ssh`, …
    pub area: &'static str,
    /// What was found.
    pub text: String,
    /// For a failure, what to do about it.
    pub fix: Option<String>,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        write!(f, "{tag} {}: {}", self.area, self.text)?;
        if let Some(fix) = &self.fix {
            write!(f, " — {fix}")?;
        }
        Ok(())
    }
}

/// The lines so far; each is printed to standard output as it is added when the
/// report echoes (as the binaries' do), so a slow check shows what came before it.
#[derive(Debug, Default)]
pub struct Report {
    lines: Vec<Line>,
    echo: bool,
}

impl Report {
    /// A report that prints each line as it is added.
    pub fn printed() -> Report {
        Report {
            lines: Vec::new(),
            echo: true,
        }
    }

    /// A report that only keeps its lines.
    pub fn quiet() -> Report {
        Report::default()
    }

    fn add(&mut self, line: Line) {
        if self.echo {
            println!("{line}");
        }
        self.lines.push(line);
    }

    /// A passed check.
    pub fn ok(&mut self, area: &'static str, text: impl Into<String>) {
        self.add(Line {
            verdict: Verdict::Ok,
            area,
            text: text.into(),
            fix: None,
        });
    }

    /// A failed check and its fix.
    pub fn fail(&mut self, area: &'static str, text: impl Into<String>, fix: impl Into<String>) {
        let fix: String = fix.into();
        self.add(Line {
            verdict: Verdict::Fail,
            area,
            text: text.into(),
            fix: (!fix.is_empty()).then_some(fix),
        });
    }

    /// A check that did not apply or could not run, and why.
    pub fn skip(&mut self, area: &'static str, text: impl Into<String>) {
        self.add(Line {
            verdict: Verdict::Skip,
            area,
            text: text.into(),
            fix: None,
        });
    }

    /// Every line, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// How many checks failed.
    pub fn failures(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.verdict == Verdict::Fail)
            .count()
    }

    /// `Ok` when nothing failed; otherwise [`ChecksFailed`], for the binary to exit 1.
    pub fn verdict(&self) -> Result<(), ChecksFailed> {
        match self.failures() {
            0 => Ok(()),
            n => Err(ChecksFailed(n)),
        }
    }
}

/// Some checks failed (how many): the binaries exit with status 1 on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChecksFailed(pub usize);

impl fmt::Display for ChecksFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => write!(f, "1 check failed"),
            n => write!(f, "{n} checks failed"),
        }
    }
}

impl std::error::Error for ChecksFailed {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_a_verdict_an_area_what_was_found_and_the_fix() {
        let mut r = Report::quiet();
        r.ok("github", "acme/widgets token can read and write issues");
        r.fail("ssh", "10.0.0.5 does not answer", "start sshd on it");
        r.skip("sandbox", "no worker runs here");
        let shown: Vec<String> = r.lines().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "ok   github: acme/widgets token can read and write issues",
                "FAIL ssh: 10.0.0.5 does not answer — start sshd on it",
                "skip sandbox: no worker runs here",
            ]
        );
        assert_eq!(r.verdict(), Err(ChecksFailed(1)));
        assert_eq!(Report::quiet().verdict(), Ok(()));
    }
}
