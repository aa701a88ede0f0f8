//! A shard's copy of the catalog, and the layers that follow it.
//!
//! Requests read the current snapshot (`get`) without locks. When the control shard installs a
//! new snapshot, each subscriber (the log opens and closes partitions, the group coordinator
//! loads its `__consumer_offsets` partitions) runs in the order it subscribed, and `install`
//! returns once all have: the control shard answers a topic change only after every shard
//! has followed it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures::future::LocalBoxFuture;

use super::Catalog;

/// Follows catalog changes: gets the previous and the new snapshot.
pub type Subscriber = Rc<dyn Fn(Arc<Catalog>, Arc<Catalog>) -> LocalBoxFuture<'static, ()>>;

pub struct Replica {
    current: RefCell<Arc<Catalog>>,
    subscribers: RefCell<Vec<Subscriber>>,
    /// Installs and `follow_again` run one at a time, so subscribers never follow two
    /// snapshots at once.
    following: futures::lock::Mutex<()>,
}

impl Replica {
    /// A replica holding the empty catalog; `install` the loaded one once subscribers are in.
    pub fn new() -> Rc<Replica> {
        Rc::new(Replica {
            current: RefCell::new(Arc::new(Catalog::default())),
            subscribers: RefCell::new(Vec::new()),
            following: futures::lock::Mutex::new(()),
        })
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<Catalog> {
        self.current.borrow().clone()
    }

    /// Adds a subscriber; later ones run after earlier ones.
    pub fn subscribe(&self, subscriber: Subscriber) {
        self.subscribers.borrow_mut().push(subscriber);
    }

    /// Makes `next` current, then lets every subscriber follow it.
    pub async fn install(&self, next: Arc<Catalog>) {
        let _one_at_a_time = self.following.lock().await;
        let previous = self.current.replace(next.clone());
        let subscribers = self.subscribers.borrow().clone();
        for subscriber in subscribers {
            subscriber(previous.clone(), next.clone()).await;
        }
    }

    /// Lets every subscriber follow the current snapshot again (previous and next both the
    /// current one): how a layer that could not follow it all the way (a partition that did
    /// not open on a full disk) tries again, with the layers after it (the coordinators load
    /// what opened). Each subscriber does only what is not done yet.
    pub async fn follow_again(&self) {
        let _one_at_a_time = self.following.lock().await;
        let current = self.get();
        let subscribers = self.subscribers.borrow().clone();
        for subscriber in subscribers {
            subscriber(current.clone(), current.clone()).await;
        }
    }
}
