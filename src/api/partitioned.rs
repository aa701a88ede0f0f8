//! The shape every per-partition API shares (Produce, Fetch, ListOffsets; later DeleteRecords,
//! OffsetsForLeaderEpoch, transaction markers): plan the request's partitions in request order,
//! answer at once those that cannot be served, send the rest to their owning shards (one
//! operation per owner), and gather the owners' answers back into request order.
//!
//! A `Plan` holds one slot per partition of the request. `answer` fills a slot now; `route`
//! assigns it to an owner with the part that owner needs. `scatter` sends each owner its parts
//! in shard order, queueing each operation before sending the next (so one connection's
//! successive requests reach every owner in order), and `respond` lays the answers out by topic.

use std::rc::Rc;

use futures::future::LocalBoxFuture;

use crate::shard::{Reply, Shard};

pub struct Plan<P, A> {
    /// Topics in request order, each with its partitions in request order.
    layout: Vec<(String, Vec<i32>)>,
    /// One per partition slot, in request order: answered now, or `None` until its owner does.
    answers: Vec<Option<A>>,
    /// Per owner shard: the slots routed there, with their parts.
    routed: Vec<Vec<(usize, P)>>,
}

/// Answers on their way back from the owners.
pub struct Scattered<A> {
    replies: Vec<(Vec<usize>, Reply<Vec<A>>)>,
}

impl<P, A> Plan<P, A> {
    /// An empty plan for a broker of `shards` shards.
    pub fn new(shards: usize) -> Plan<P, A> {
        Plan {
            layout: Vec::new(),
            answers: Vec::new(),
            routed: (0..shards).map(|_| Vec::new()).collect(),
        }
    }

    /// Starts the next topic of the request; its partitions follow.
    pub fn topic(&mut self, name: String) {
        self.layout.push((name, Vec::new()));
    }

    fn slot(&mut self, partition: i32) -> usize {
        if self.layout.is_empty() {
            self.layout.push((String::new(), Vec::new()));
        }
        if let Some((_, partitions)) = self.layout.last_mut() {
            partitions.push(partition);
        }
        self.answers.push(None);
        self.answers.len() - 1
    }

    /// Answers `partition` of the current topic now.
    pub fn answer(&mut self, partition: i32, answer: A) {
        let slot = self.slot(partition);
        self.answers[slot] = Some(answer);
    }

    /// Sends `partition` of the current topic to shard `owner`, with what it needs there.
    pub fn route(&mut self, partition: i32, owner: usize, part: P) {
        let slot = self.slot(partition);
        if let Some(parts) = self.routed.get_mut(owner) {
            parts.push((slot, part));
        }
    }

    /// Every routed part with its owner and slot, owner by owner.
    pub fn routed(&self) -> impl Iterator<Item = (usize, usize, &P)> {
        self.routed
            .iter()
            .enumerate()
            .flat_map(|(owner, parts)| parts.iter().map(move |(slot, p)| (owner, *slot, p)))
    }

    /// How many partition slots the request has.
    pub fn slots(&self) -> usize {
        self.answers.len()
    }

    /// True when no partition goes to an owner.
    pub fn nothing_routed(&self) -> bool {
        self.routed.iter().all(Vec::is_empty)
    }

    /// Sends each owner one operation made by `make` from its parts, in shard order, each
    /// queued before the next is sent. The parts go with it: a plan is sent once.
    pub async fn scatter<S, Op, F>(&mut self, shard: &Rc<Shard>, make: F) -> Scattered<A>
    where
        A: Send + 'static,
        S: 'static,
        F: FnMut(Vec<P>) -> Op,
        Op: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, Vec<A>> + Send + 'static,
    {
        let routed: Vec<Vec<(usize, P)>> = self.routed.iter_mut().map(std::mem::take).collect();
        send(shard, routed, make).await
    }

    /// `scatter`, `gather` and `respond` in one, for a request answered once every owner has:
    /// the answers by topic in request order, `missing()` for an owner that stopped first.
    pub async fn run<S, Op, F>(
        mut self,
        shard: &Rc<Shard>,
        make: F,
        missing: impl Fn() -> A,
    ) -> Vec<(String, Vec<(i32, A)>)>
    where
        A: Send + 'static,
        S: 'static,
        F: FnMut(Vec<P>) -> Op,
        Op: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, Vec<A>> + Send + 'static,
    {
        let answers = self.scatter(shard, make).await.gather().await;
        self.respond(answers, missing)
    }

    /// `scatter` with copies of the parts, for a plan sent more than once (a long poll).
    pub async fn scatter_copies<S, Op, F>(&self, shard: &Rc<Shard>, make: F) -> Scattered<A>
    where
        P: Clone,
        A: Send + 'static,
        S: 'static,
        F: FnMut(Vec<P>) -> Op,
        Op: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, Vec<A>> + Send + 'static,
    {
        send(shard, self.routed.clone(), make).await
    }

    /// Lays out every slot's answer by topic, in request order: answered now, else from
    /// `answers` (slot, answer), else `missing()` (the owner stopped before answering).
    pub fn respond(
        self,
        answers: Vec<(usize, A)>,
        missing: impl Fn() -> A,
    ) -> Vec<(String, Vec<(i32, A)>)> {
        let mut slots = self.answers;
        for (slot, a) in answers {
            if let Some(s) = slots.get_mut(slot) {
                *s = Some(a);
            }
        }
        let mut slots = slots.into_iter();
        self.layout
            .into_iter()
            .map(|(topic, partitions)| {
                let answered = partitions
                    .into_iter()
                    .map(|p| (p, slots.next().flatten().unwrap_or_else(&missing)))
                    .collect();
                (topic, answered)
            })
            .collect()
    }
}

/// Sends each owner (by index in `routed`) its parts as one operation, in shard order.
async fn send<P, A, S, Op, F>(
    shard: &Rc<Shard>,
    routed: Vec<Vec<(usize, P)>>,
    mut make: F,
) -> Scattered<A>
where
    A: Send + 'static,
    S: 'static,
    F: FnMut(Vec<P>) -> Op,
    Op: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, Vec<A>> + Send + 'static,
{
    let mut replies = Vec::new();
    for (owner, parts) in routed.into_iter().enumerate() {
        if parts.is_empty() {
            continue;
        }
        let (slots, parts): (Vec<usize>, Vec<P>) = parts.into_iter().unzip();
        replies.push((slots, shard.submit_to(owner, make(parts)).await));
    }
    Scattered { replies }
}

impl<A> Scattered<A> {
    /// `gather`, showing each owner's answers to `watch` as they arrive (a long poll stops
    /// the other owners' waits once one has found records).
    pub async fn gather_watching(self, mut watch: impl FnMut(&[A])) -> Vec<(usize, A)> {
        use futures::stream::{FuturesUnordered, StreamExt};
        let mut pending: FuturesUnordered<_> = self
            .replies
            .into_iter()
            .map(|(slots, reply)| async move { (slots, reply.await) })
            .collect();
        let mut out = Vec::new();
        while let Some((slots, answers)) = pending.next().await {
            let answers = answers.unwrap_or_default();
            watch(&answers);
            out.extend(slots.into_iter().zip(answers));
        }
        out
    }

    /// Waits for every owner and returns their answers with their slots. An owner that stopped
    /// before answering leaves its slots out.
    pub async fn gather(self) -> Vec<(usize, A)> {
        let (slots, replies): (Vec<Vec<usize>>, Vec<Reply<Vec<A>>>) =
            self.replies.into_iter().unzip();
        let mut out = Vec::new();
        for (slots, answers) in slots
            .into_iter()
            .zip(futures::future::join_all(replies).await)
        {
            out.extend(slots.into_iter().zip(answers.unwrap_or_default()));
        }
        out
    }
}
