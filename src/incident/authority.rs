//! Who may change an incident: declaring and noting are open to anyone let in, while severity,
//! roles, status and resolving belong to the people running it.
//!
//! A person runs an incident when they declared it (its commander id), hold one of its roles
//! by id or mention (`<@U024BE7LH>`, `<@U024BE7LH|bob>`, `<@!80351110224678912>`, or the bare
//! id the console uses), or are in the config group [`INCIDENT_MANAGERS`]. Names alone do not
//! count: a display name can be chosen by anyone, an id cannot.

use crate::approval::Groups;
use crate::store::Incident;

/// The config group (`groups.incident_managers` in `firebreak.yaml`) whose members may change
/// any incident.
pub const INCIDENT_MANAGERS: &str = "incident_managers";

/// Subcommands anyone let in may run on an incident; every other change needs [`may_change`].
pub const OPEN_TO_ALL: &[&str] = &["note"];

/// The commander id of an incident an alert opened (see `incident::alerts`).
const ALERT_COMMANDER_ID: &str = "alertmanager";
/// Its commander role until a person takes it.
const ALERT_COMMANDER_NAME: &str = "Alertmanager";

/// Whether `user_id` may change `incident`'s severity, roles, status or state.
///
/// An incident an alert opened has no person in command until someone takes the commander
/// role (`/incident role commander @me`); until then anyone let in may change it, since at
/// 3 a.m. the first responder must be able to act.
pub fn may_change(incident: &Incident, groups: &Groups, user_id: &str) -> bool {
    if user_id.is_empty() {
        return false;
    }
    let unclaimed = incident.data.commander_id == ALERT_COMMANDER_ID
        && incident
            .data
            .roles
            .get("commander")
            .is_none_or(|holder| holder == ALERT_COMMANDER_NAME);
    unclaimed
        || incident.data.commander_id == user_id
        || incident
            .data
            .roles
            .values()
            .any(|holder| names_user(holder, user_id))
        || groups
            .get(INCIDENT_MANAGERS)
            .is_some_and(|members| members.iter().any(|m| m == user_id))
}

/// Whether a role holder's text designates `user_id`: the id itself, or a Slack or Discord
/// mention of it.
fn names_user(holder: &str, user_id: &str) -> bool {
    let holder = holder.trim();
    if holder == user_id {
        return true;
    }
    let mut rest = holder;
    while let Some(start) = rest.find("<@") {
        let after = rest.get(start + 2..).unwrap_or("");
        let after = after.strip_prefix('!').unwrap_or(after);
        let id = after.split(['>', '|']).next().unwrap_or("");
        if id == user_id {
            return true;
        }
        rest = after;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IncidentData;

    fn incident(commander: &str, roles: &[(&str, &str)]) -> Incident {
        Incident {
            id: "INC-1".into(),
            title: "t".into(),
            severity: "sev2".into(),
            open: true,
            group_key: None,
            declared_at: String::new(),
            data: IncidentData {
                commander_id: commander.into(),
                roles: roles
                    .iter()
                    .map(|(r, h)| (r.to_string(), h.to_string()))
                    .collect(),
                ..IncidentData::default()
            },
        }
    }

    #[test]
    fn commander_responders_and_managers_only() {
        let inc = incident(
            "U_ALICE",
            &[
                ("commander", "alice"),
                ("scribe", "<@U_BOB|bob>"),
                ("ops", "<@!123>"),
                ("comms", "carol"),
            ],
        );
        let mut groups = Groups::new();
        groups.insert(INCIDENT_MANAGERS.into(), vec!["U_MGR".into()]);
        for allowed in ["U_ALICE", "U_BOB", "123", "carol", "U_MGR"] {
            assert!(may_change(&inc, &groups, allowed), "{allowed}");
        }
        for refused in ["U_EVE", "bob", "U_BO", "", "12"] {
            assert!(!may_change(&inc, &groups, refused), "{refused}");
        }
    }

    #[test]
    fn an_alert_opened_incident_is_open_to_all_until_someone_takes_command() {
        let unclaimed = incident("alertmanager", &[("commander", "Alertmanager")]);
        assert!(may_change(&unclaimed, &Groups::new(), "U_ANYONE"));
        let claimed = incident("alertmanager", &[("commander", "<@U_ALICE>")]);
        assert!(may_change(&claimed, &Groups::new(), "U_ALICE"));
        assert!(!may_change(&claimed, &Groups::new(), "U_ANYONE"));
    }
}
