//! Wall-clock helpers for reports and run ids: RFC 3339 timestamps (Unix milliseconds are
//! `loadgrade_common::clock::unix_ms`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// A run id: UTC time to the second plus 4 random hex digits, e.g. `20261127T001530Z-3f9a`.
pub fn new_run_id() -> String {
    let now = OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:04x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        rand::random::<u16>()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_run_ids_have_the_form_clients_accept() {
        for _ in 0..100 {
            let id = super::new_run_id();
            assert!(loadgrade_common::run::is_run_id(&id), "{id}");
        }
    }
}
