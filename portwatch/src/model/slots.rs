//! The arena behind the model's interned tables (pools, processes, links, listeners): values
//! addressed by small `u32` ids that stay valid until removed; freed ids are reused.

pub(crate) struct Slots<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slots<T> {
    /// Stores `v` in a free slot (or a new one); returns its id.
    pub fn insert(&mut self, v: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.items[id as usize] = Some(v);
                id
            }
            None => {
                self.items.push(Some(v));
                (self.items.len() - 1) as u32
            }
        }
    }

    /// Takes the value out; its id becomes free.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let v = self.items.get_mut(id as usize)?.take()?;
        self.free.push(id);
        Some(v)
    }

    pub fn get(&self, id: u32) -> Option<&T> {
        self.items.get(id as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.items.get_mut(id as usize).and_then(Option::as_mut)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.items.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_reused_after_removal() {
        let mut s = Slots::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        let c = s.insert("c");
        assert_eq!(c, a, "a freed id is reused");
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(a, &"c"), (b, &"b")]);
    }
}
