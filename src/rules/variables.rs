//! The variables rules may read: `<group>.<member>` names mapped to slots of one `f64` array.
//!
//! A group is a model (`behavior`, members = its output labels) or a signal group
//! (`miniscope`, members = ROIs). Each group is also a clock: a rule runs on every new output
//! of its clock group. Members of a group get consecutive slots.

use std::collections::HashMap;
use std::ops::Range;

use thiserror::Error;

/// Index of a group (and clock) in a [`VariableTable`].
pub type GroupId = usize;

/// Why a group could not be added to a [`VariableTable`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VariableError {
    /// The group name is already taken.
    #[error("variable group `{0}` is defined twice")]
    DuplicateGroup(String),
    /// A member name repeats within its group.
    #[error("variable `{0}` is defined twice")]
    DuplicateVariable(String),
    /// A group or member name is empty or contains a dot.
    #[error("`{0}` is not a valid variable name part (non-empty, no `.`)")]
    BadName(String),
}

/// Variable names → slots, and slot → group (clock).
#[derive(Debug, Clone, Default)]
pub struct VariableTable {
    groups: Vec<Group>,
    /// Full names (`group.member`) in slot order.
    names: Vec<String>,
    /// Group of each slot.
    slot_group: Vec<GroupId>,
    by_name: HashMap<String, usize>,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    slots: Range<usize>,
}

impl VariableTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a group whose members take the next consecutive slots; returns those slots.
    pub fn add_group<S: AsRef<str>>(
        &mut self,
        group: &str,
        members: &[S],
    ) -> Result<Range<usize>, VariableError> {
        check_part(group)?;
        if self.group(group).is_some() {
            return Err(VariableError::DuplicateGroup(group.to_string()));
        }
        let id = self.groups.len();
        let start = self.names.len();
        for member in members {
            let member = member.as_ref();
            check_part(member)?;
            let name = format!("{group}.{member}");
            if self.by_name.contains_key(&name) {
                // Roll back the members added so far so the table stays consistent.
                for added in self.names.drain(start..) {
                    self.by_name.remove(&added);
                }
                self.slot_group.truncate(start);
                return Err(VariableError::DuplicateVariable(name));
            }
            self.by_name.insert(name.clone(), self.names.len());
            self.names.push(name);
            self.slot_group.push(id);
        }
        let slots = start..self.names.len();
        self.groups.push(Group {
            name: group.to_string(),
            slots: slots.clone(),
        });
        Ok(slots)
    }

    /// The slot of a full name like `behavior.wall_rearing`.
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The group id of a group name.
    pub fn group(&self, name: &str) -> Option<GroupId> {
        self.groups.iter().position(|g| g.name == name)
    }

    /// The name of group `id`.
    pub fn group_name(&self, id: GroupId) -> &str {
        &self.groups[id].name
    }

    /// The slots of group `id`'s members.
    pub fn group_slots(&self, id: GroupId) -> Range<usize> {
        self.groups[id].slots.clone()
    }

    /// The group a slot belongs to.
    pub fn group_of_slot(&self, slot: usize) -> Option<GroupId> {
        self.slot_group.get(slot).copied()
    }

    /// Number of groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Group names in id order.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Full variable names in slot order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Number of slots (variables).
    pub fn slot_count(&self) -> usize {
        self.names.len()
    }

    /// A slot array for this table with every value missing (`NaN`).
    pub fn empty_slots(&self) -> Vec<f64> {
        vec![f64::NAN; self.slot_count()]
    }
}

fn check_part(part: &str) -> Result<(), VariableError> {
    if part.is_empty() || part.contains('.') || part.chars().any(char::is_whitespace) {
        Err(VariableError::BadName(part.to_string()))
    } else {
        Ok(())
    }
}
