//! The one name rule and the one name-keyed registry of the core.
//!
//! Every set the package keys by a user-given name (breakers, gates,
//! watchdogs, dead-letter queues, rollouts, startup services) is a
//! [`Named`]: names are checked by [`check_name`] (the one rule: 1 to
//! [`MAX_NAME_CHARS`] characters, none of them control, invisible or
//! bidirectional-control characters, see [`super::text`]), each name gets a
//! small stable id in creation order, and the set is capped so a name made per
//! request cannot grow memory without bound.
//!
//! ```
//! use reliability_core::core::named::Named;
//! let mut gates: Named<u32> = Named::new("health gate", 100, "raise maxGates");
//! let (id, created) = gates.get_or_insert("name", "db", || Ok(7)).unwrap();
//! assert!(created);
//! assert_eq!(gates.id_of("db"), Some(id));
//! assert_eq!(gates.by_name("db"), Some(&7));
//! assert!(gates.get_or_insert("name", "", || Ok(1)).is_err());
//! ```

use std::collections::HashMap;
use std::rc::Rc;

use super::error::{CoreError, CoreResult};

/// The longest name any registry accepts, in characters.
pub const MAX_NAME_CHARS: usize = 256;

/// The one name rule: a non-empty string of at most [`MAX_NAME_CHARS`]
/// characters with no forbidden character (see [`super::text::forbidden`]).
/// The error is a RangeError naming `field`.
///
/// ```
/// use reliability_core::core::named::check_name;
/// assert!(check_name("name", "payments-api").is_ok());
/// assert_eq!(
///     check_name("name", "").unwrap_err().message,
///     "name must be a non-empty string of at most 256 characters, got an empty string"
/// );
/// assert!(check_name("name", "a\u{202e}b").is_err());
/// ```
pub fn check_name(field: &str, name: &str) -> CoreResult<()> {
    super::text::check(field, name, MAX_NAME_CHARS, false)
}

/// A capped, append-only set of `T` keyed by name, with stable `u32` ids in
/// creation order. Removal is [`Named::clear`] only: ids handed to JavaScript
/// (mirror pages, rings) must never point at another entry.
///
/// ```
/// use reliability_core::core::named::Named;
/// let mut n: Named<&str> = Named::new("watchdog", 2, "raise maxWatchdogs");
/// n.get_or_insert("name", "a", || Ok("first")).unwrap();
/// n.get_or_insert("name", "b", || Ok("second")).unwrap();
/// let err = n.get_or_insert("name", "c", || Ok("third")).unwrap_err();
/// assert_eq!(err.kind, reliability_core::core::error::ErrorKind::Limit);
/// assert_eq!(n.iter().map(|(_, name, _)| name).collect::<Vec<_>>(), ["a", "b"]);
/// ```
#[derive(Debug, Clone)]
pub struct Named<T> {
    items: Vec<T>,
    names: Vec<Rc<str>>,
    index: HashMap<Rc<str>, u32>,
    cap: usize,
    what: &'static str,
    raise: &'static str,
}

impl<T> Named<T> {
    /// An empty set of `what`s (used in the cap's error message), holding at
    /// most `cap`; `raise` tells the user how to raise the cap.
    pub fn new(what: &'static str, cap: usize, raise: &'static str) -> Self {
        Named {
            items: Vec::new(),
            names: Vec::new(),
            index: HashMap::new(),
            cap,
            what,
            raise,
        }
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The cap on entries.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Sets the cap; entries past it stay, new ones are refused.
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// The id of `name`, if it exists.
    pub fn id_of(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The entry with this id.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.items.get(id as usize)
    }

    /// The entry with this id, mutably.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.items.get_mut(id as usize)
    }

    /// The entry named `name`.
    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.id_of(name).and_then(|id| self.get(id))
    }

    /// The entry named `name`, mutably.
    pub fn by_name_mut(&mut self, name: &str) -> Option<&mut T> {
        let id = self.id_of(name)?;
        self.get_mut(id)
    }

    /// The entry named `name`, or a NotFound error naming it.
    ///
    /// ```
    /// use reliability_core::core::named::Named;
    /// let n: Named<u8> = Named::new("health gate", 10, "");
    /// assert_eq!(n.require("db").unwrap_err().message, "health gate not found: db");
    /// ```
    pub fn require(&self, name: &str) -> CoreResult<&T> {
        self.by_name(name)
            .ok_or_else(|| CoreError::not_found(self.what, name))
    }

    /// As [`Named::require`], mutably.
    pub fn require_mut(&mut self, name: &str) -> CoreResult<&mut T> {
        let what = self.what;
        self.by_name_mut(name)
            .ok_or_else(|| CoreError::not_found(what, name))
    }

    /// The name of the entry with this id.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|n| &**n)
    }

    /// Returns the id of `name`, creating its entry with `make` when it is
    /// new (the bool says whether it was created). A new name is checked by
    /// [`check_name`] (the error names `field`) and against the cap first;
    /// `make` runs only when both pass, and its error leaves the set as it was.
    pub fn get_or_insert(
        &mut self,
        field: &str,
        name: &str,
        make: impl FnOnce() -> CoreResult<T>,
    ) -> CoreResult<(u32, bool)> {
        if let Some(id) = self.id_of(name) {
            return Ok((id, false));
        }
        check_name(field, name)?;
        if self.items.len() >= self.cap {
            return Err(CoreError::limit(
                &format!(
                    "{} \"{name}\" not created: {} exist",
                    self.what,
                    self.items.len()
                ),
                self.cap,
                self.raise,
            ));
        }
        let item = make()?;
        let id = self.items.len() as u32;
        let name: Rc<str> = name.into();
        self.items.push(item);
        self.names.push(Rc::clone(&name));
        self.index.insert(name, id);
        Ok((id, true))
    }

    /// Every entry as `(id, name, entry)`, in creation order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str, &T)> {
        self.names
            .iter()
            .zip(&self.items)
            .enumerate()
            .map(|(i, (n, t))| (i as u32, &**n, t))
    }

    /// Every entry, mutably, in creation order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.items.iter_mut()
    }

    /// Every entry, in creation order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }

    /// Removes every entry; the cap stays. Ids handed out before are invalid.
    pub fn clear(&mut self) {
        self.items.clear();
        self.names.clear();
        self.index.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorKind;

    #[test]
    fn ids_are_stable_and_in_creation_order() {
        let mut n: Named<u32> = Named::new("gate", 10, "");
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(
                n.get_or_insert("name", name, || Ok(i as u32)).unwrap(),
                (i as u32, true)
            );
        }
        assert_eq!(n.get_or_insert("name", "b", || Ok(99)).unwrap(), (1, false));
        assert_eq!(n.get(1), Some(&1));
        assert_eq!(n.name(2), Some("c"));
    }

    #[test]
    fn a_failed_make_or_a_bad_name_leaves_the_set_as_it_was() {
        let mut n: Named<u32> = Named::new("gate", 10, "");
        assert!(n
            .get_or_insert("name", "x", || Err(CoreError::range("f", "ok", 1)))
            .is_err());
        assert!(n.get_or_insert("name", &"x".repeat(257), || Ok(1)).is_err());
        assert!(n.get_or_insert("name", "a\u{0}", || Ok(1)).is_err());
        assert!(n.is_empty());
        assert!(n.get_or_insert("name", &"x".repeat(256), || Ok(1)).is_ok());
    }

    #[test]
    fn the_cap_refuses_new_names_only() {
        let mut n: Named<u32> = Named::new("gate", 1, "raise it");
        n.get_or_insert("name", "a", || Ok(1)).unwrap();
        let e = n.get_or_insert("name", "b", || Ok(2)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Limit);
        assert!(e.message.contains("raise it"), "{}", e.message);
        assert_eq!(n.get_or_insert("name", "a", || Ok(3)).unwrap(), (0, false));
    }
}
