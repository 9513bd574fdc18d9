//! Prompt templates: `{{name}}` is replaced by a value, and `{{#name}}…{{/name}}`
//! is kept only when the value is not empty. Nothing else is special, so issue text
//! put into a template is never read as a template itself.

use std::collections::BTreeMap;

/// The values a template sees, by name.
pub type Vars = BTreeMap<&'static str, String>;

/// `template` with its placeholders filled from `vars`.
///
/// An unknown name is an error (a typo in a workflow file is found when it is
/// loaded, not in a prompt), as is a section left open.
///
/// ```
/// use scrum_bins::runner::workflow::template::{render, Vars};
/// let mut vars = Vars::new();
/// vars.insert("name", "Ada".into());
/// vars.insert("feedback", String::new());
/// let out = render("Hi {{name}}.{{#feedback}} Fix: {{feedback}}{{/feedback}}", &vars).unwrap();
/// assert_eq!(out, "Hi Ada.");
/// ```
pub fn render(template: &str, vars: &Vars) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    // The sections open around the current position, and whether each is shown.
    let mut open: Vec<(&str, bool)> = Vec::new();
    while let Some(start) = rest.find("{{") {
        let shown = open.iter().all(|(_, s)| *s);
        if shown {
            out.push_str(&rest[..start]);
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("a '{{{{' is not closed: {:?}", excerpt(&rest[start..])))?;
        let tag = after[..end].trim();
        rest = &after[end + 2..];
        if let Some(name) = tag.strip_prefix('#') {
            let value = lookup(vars, name.trim())?;
            open.push((name.trim(), !value.is_empty()));
        } else if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some((n, _)) if n == name.trim() => {}
                _ => return Err(format!("{{{{/{}}}}} closes no open section", name.trim())),
            }
        } else {
            let value = lookup(vars, tag)?;
            if shown {
                out.push_str(value);
            }
        }
    }
    if let Some((name, _)) = open.pop() {
        return Err(format!("the section {{{{#{name}}}}} is not closed"));
    }
    if open.iter().all(|(_, s)| *s) {
        out.push_str(rest);
    }
    Ok(out)
}

fn lookup<'a>(vars: &'a Vars, name: &str) -> Result<&'a str, String> {
    vars.get(name).map(String::as_str).ok_or_else(|| {
        let known: Vec<&str> = vars.keys().copied().collect();
        format!(
            "unknown placeholder {{{{{name}}}}} (known: {})",
            known.join(", ")
        )
    })
}

fn excerpt(s: &str) -> &str {
    let end = s.char_indices().nth(30).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&'static str, &str)]) -> Vars {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn placeholders_and_sections() {
        let v = vars(&[("a", "1"), ("fb", "fix it"), ("none", "")]);
        assert_eq!(render("x{{a}}y{{ a }}", &v).unwrap(), "x1y1");
        assert_eq!(
            render("{{#fb}}[{{fb}}]{{/fb}}{{#none}}gone {{a}}{{/none}}.", &v).unwrap(),
            "[fix it]."
        );
    }

    #[test]
    fn values_are_not_templates() {
        let v = vars(&[("body", "{{secret}} {{#x}}")]);
        assert_eq!(render("<{{body}}>", &v).unwrap(), "<{{secret}} {{#x}}>");
    }

    #[test]
    fn mistakes_are_named() {
        let v = vars(&[("a", "1")]);
        assert!(
            render("{{b}}", &v)
                .unwrap_err()
                .contains("unknown placeholder {{b}}")
        );
        assert!(render("{{#a}}x", &v).unwrap_err().contains("not closed"));
        assert!(render("{{/a}}", &v).unwrap_err().contains("closes no open"));
        assert!(render("{{a", &v).unwrap_err().contains("not closed"));
    }
}
