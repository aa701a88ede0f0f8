//! The classic protocol's state machine, driven directly: joins, syncs, heartbeats,
//! leaves, timeouts and static members, with the clock passed in.

use super::*;

fn limits(delay_ms: u64) -> Limits {
    Limits {
        initial_rebalance_delay: Duration::from_millis(delay_ms),
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 1_800_000,
        max_size: 100,
    }
}

fn req(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn join(g: &mut Group, r: JoinRequest, now: Instant) -> oneshot::Receiver<JoinOutcome> {
    let (tx, rx) = oneshot::channel();
    g.join(r, &limits(0), now, 0, tx);
    rx
}

fn ready<T>(rx: &mut oneshot::Receiver<T>) -> Option<T> {
    rx.try_recv().ok().flatten()
}

/// A dynamic member: MEMBER_ID_REQUIRED, then the real join.
fn join_new(
    g: &mut Group,
    protocols: &[&str],
    now: Instant,
) -> (String, oneshot::Receiver<JoinOutcome>) {
    let mut rx = join(g, req("", None, protocols), now);
    let first = ready(&mut rx).expect("answered at once");
    assert_eq!(first.error, Some(Error::MemberIdRequired));
    let id = first.member_id.clone();
    (id.clone(), join(g, req(&id, None, protocols), now))
}

fn sync(
    g: &mut Group,
    id: &str,
    generation: i32,
    assignments: Vec<(String, Bytes)>,
    now: Instant,
) -> oneshot::Receiver<SyncOutcome> {
    let (tx, rx) = oneshot::channel();
    g.sync(id, None, generation, None, None, assignments, now, 0, tx);
    rx
}

#[test]
fn two_members_join_sync_and_one_leaves() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let (a, mut ja) = join_new(&mut g, &["range"], t0);
    // Initial delay 0: the first member's join completes alone (generation 1).
    let oa = ready(&mut ja).unwrap();
    assert_eq!(
        (oa.error, oa.generation, oa.leader.as_str()),
        (None, 1, a.as_str())
    );
    assert_eq!(oa.members.len(), 1);
    // A second member joins: rebalance; the first learns from its heartbeat.
    let (b, mut jb) = join_new(&mut g, &["roundrobin", "range"], t0);
    assert!(ready(&mut jb).is_none());
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(
        g.heartbeat(&a, None, 1, t0),
        Err(Error::RebalanceInProgress)
    );
    let mut ja = join(&mut g, req(&a, None, &["range"]), t0);
    let (oa, ob) = (ready(&mut ja).unwrap(), ready(&mut jb).unwrap());
    assert_eq!((oa.generation, ob.generation), (2, 2));
    assert_eq!(
        oa.protocol.as_deref(),
        Some("range"),
        "the only protocol both support"
    );
    assert_eq!(oa.members.len(), 2, "the leader sees every member");
    assert!(ob.members.is_empty());
    // Follower syncs first and waits for the leader's assignment.
    let mut sb = sync(&mut g, &b, 2, vec![], t0);
    assert!(ready(&mut sb).is_none());
    let mut sa = sync(
        &mut g,
        &a,
        2,
        vec![
            (a.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ],
        t0,
    );
    assert_eq!(ready(&mut sa).unwrap().assignment, Bytes::from_static(b"A"));
    assert_eq!(ready(&mut sb).unwrap().assignment, Bytes::from_static(b"B"));
    assert_eq!(g.state, GroupState::Stable);
    assert!(g.dirty);
    assert_eq!(g.heartbeat(&b, None, 2, t0), Ok(()));
    assert_eq!(g.heartbeat(&b, None, 1, t0), Err(Error::IllegalGeneration));
    // b leaves: a alone rebalances into generation 3.
    assert_eq!(g.leave(&[(b.clone(), None)], t0, 0), vec![Ok(())]);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut ja = join(&mut g, req(&a, None, &["range"]), t0);
    assert_eq!(ready(&mut ja).unwrap().generation, 3);
    assert_eq!(g.heartbeat(&b, None, 3, t0), Err(Error::UnknownMemberId));
}

#[test]
fn session_expiry_removes_a_silent_member() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let (a, mut ja) = join_new(&mut g, &["range"], t0);
    ready(&mut ja).unwrap();
    let (b, mut jb) = join_new(&mut g, &["range"], t0);
    let mut ja = join(&mut g, req(&a, None, &["range"]), t0);
    ready(&mut ja).unwrap();
    ready(&mut jb).unwrap();
    let mut sa = sync(&mut g, &a, 2, vec![], t0);
    let mut sb = sync(&mut g, &b, 2, vec![], t0);
    ready(&mut sa).unwrap();
    ready(&mut sb).unwrap();
    // a keeps heartbeating, b goes silent.
    let t1 = t0 + Duration::from_secs(8);
    assert_eq!(g.heartbeat(&a, None, 2, t1), Ok(()));
    let t2 = t0 + Duration::from_secs(11);
    g.tick(t2, 0);
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut ja = join(&mut g, req(&a, None, &["range"]), t2);
    assert_eq!(ready(&mut ja).unwrap().generation, 3);
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let (a, mut ja) = join_new(&mut g, &["range"], t0);
    ready(&mut ja).unwrap();
    let mut sa = sync(&mut g, &a, 1, vec![], t0);
    ready(&mut sa).unwrap();
    let (_b, mut jb) = join_new(&mut g, &["range"], t0);
    // a keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    let t1 = t0 + Duration::from_secs(9);
    assert_eq!(
        g.heartbeat(&a, None, 1, t1),
        Err(Error::RebalanceInProgress)
    );
    g.tick(t1, 0);
    assert!(ready(&mut jb).is_none());
    let t2 = t0 + Duration::from_secs(31);
    assert_eq!(
        g.heartbeat(&a, None, 1, t2 - Duration::from_secs(1)),
        Err(Error::RebalanceInProgress)
    );
    g.tick(t2, 0);
    let ob = ready(&mut jb).unwrap();
    assert_eq!((ob.error, ob.generation, ob.members.len()), (None, 2, 1));
    assert_eq!(g.heartbeat(&a, None, 1, t2), Err(Error::UnknownMemberId));
}

#[test]
fn initial_delay_gathers_members() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let l = limits(3000);
    let mut rxs = Vec::new();
    for _ in 0..3 {
        let (tx, mut rx) = oneshot::channel();
        g.join(req("", None, &["range"]), &l, t0, 0, tx);
        let id = ready(&mut rx).unwrap().member_id;
        let (tx, rx) = oneshot::channel();
        g.join(
            req(&id, None, &["range"]),
            &l,
            t0 + Duration::from_millis(100),
            0,
            tx,
        );
        rxs.push(rx);
    }
    g.tick(t0 + Duration::from_millis(2000), 0);
    assert!(rxs.iter_mut().all(|rx| ready(rx).is_none()));
    g.tick(t0 + Duration::from_millis(3200), 0);
    let outs: Vec<_> = rxs.iter_mut().map(|rx| ready(rx).unwrap()).collect();
    assert!(outs.iter().all(|o| o.generation == 1 && o.error.is_none()));
    assert_eq!(
        outs.iter().filter(|o| !o.members.is_empty()).count(),
        1,
        "one leader"
    );
}

#[test]
fn static_member_restart_keeps_its_assignment_without_rebalance() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let mut ja = join(&mut g, req("", Some("i-a"), &["range"]), t0);
    let a = ready(&mut ja).unwrap();
    assert_eq!(a.error, None, "static members skip MEMBER_ID_REQUIRED");
    let (b, mut jb) = join_new(&mut g, &["range"], t0);
    let mut ja = join(&mut g, req(&a.member_id, Some("i-a"), &["range"]), t0);
    let (oa, _ob) = (ready(&mut ja).unwrap(), ready(&mut jb).unwrap());
    let mut sa = sync(
        &mut g,
        &oa.member_id,
        oa.generation,
        vec![
            (oa.member_id.clone(), Bytes::from_static(b"A")),
            (b.clone(), Bytes::from_static(b"B")),
        ],
        t0,
    );
    let mut sb = sync(&mut g, &b, oa.generation, vec![], t0);
    ready(&mut sa).unwrap();
    ready(&mut sb).unwrap();
    let generation = g.generation;
    // The static member restarts: new join without member id, same instance id.
    let mut ja2 = join(
        &mut g,
        req("", Some("i-a"), &["range"]),
        t0 + Duration::from_secs(2),
    );
    let oa2 = ready(&mut ja2).unwrap();
    assert_eq!(oa2.error, None);
    assert_ne!(oa2.member_id, oa.member_id);
    assert_eq!(oa2.generation, generation, "no rebalance");
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(
        g.heartbeat(&b, None, generation, t0),
        Ok(()),
        "the other member is undisturbed"
    );
    let (tx, mut s2) = oneshot::channel();
    g.sync(
        &oa2.member_id,
        Some("i-a"),
        generation,
        None,
        None,
        vec![],
        t0,
        0,
        tx,
    );
    assert_eq!(ready(&mut s2).unwrap().assignment, Bytes::from_static(b"A"));
    // The old incarnation is fenced.
    assert_eq!(
        g.heartbeat(&oa.member_id, Some("i-a"), generation, t0),
        Err(Error::FencedInstanceId)
    );
}

#[test]
fn commits_are_checked_against_membership() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    assert_eq!(
        g.check_commit("", None, -1, t0),
        Ok(()),
        "simple commit to an empty group"
    );
    let (a, mut ja) = join_new(&mut g, &["range"], t0);
    ready(&mut ja).unwrap();
    assert_eq!(
        g.check_commit(&a, None, 1, t0),
        Err(Error::RebalanceInProgress)
    );
    let mut sa = sync(&mut g, &a, 1, vec![], t0);
    ready(&mut sa).unwrap();
    assert_eq!(g.check_commit(&a, None, 1, t0), Ok(()));
    assert_eq!(
        g.check_commit(&a, None, 0, t0),
        Err(Error::IllegalGeneration)
    );
    assert_eq!(
        g.check_commit("x", None, 1, t0),
        Err(Error::UnknownMemberId)
    );
    assert_eq!(
        g.check_commit("", None, -1, t0),
        Err(Error::UnknownMemberId)
    );
}

#[test]
fn inconsistent_protocols_and_bad_session_timeouts_are_refused() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let (_a, mut ja) = join_new(&mut g, &["range"], t0);
    ready(&mut ja).unwrap();
    let mut jx = join(&mut g, req("", None, &["sticky"]), t0);
    assert_eq!(
        ready(&mut jx).unwrap().error,
        Some(Error::InconsistentGroupProtocol)
    );
    let mut r = req("", None, &["range"]);
    r.session_timeout_ms = 10;
    let mut jy = join(&mut g, r, t0);
    assert_eq!(
        ready(&mut jy).unwrap().error,
        Some(Error::InvalidSessionTimeout)
    );
}

#[test]
fn offsets_expire_only_once_the_group_stayed_empty() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 1_000);
    let committed = |ts| Committed {
        offset: 1,
        leader_epoch: -1,
        metadata: String::new(),
        commit_timestamp: ts,
    };
    g.offsets.insert(("t".into(), 0), committed(1_000));
    g.offsets.insert(("t".into(), 1), committed(5_000));
    assert!(g.expired_offsets(10_000, 10_999).is_empty());
    assert_eq!(
        g.expired_offsets(10_000, 11_000),
        vec![("t".to_string(), 0)]
    );
    // With a member the group keeps everything, however old.
    let (_a, mut ja) = join_new(&mut g, &["range"], t0);
    ready(&mut ja).unwrap();
    assert!(g.expired_offsets(10_000, 1_000_000).is_empty());
}

#[test]
fn persisted_group_restores_stable() {
    let t0 = Instant::now();
    let mut g = Group::new("g", 0);
    let (a, mut ja) = join_new(&mut g, &["range"], t0);
    ready(&mut ja).unwrap();
    let mut sa = sync(
        &mut g,
        &a,
        1,
        vec![(a.clone(), Bytes::from_static(b"A"))],
        t0,
    );
    ready(&mut sa).unwrap();
    let restored = Group::restore("g", g.to_value(), t0);
    assert_eq!(restored.state, GroupState::Stable);
    assert_eq!(restored.generation, 1);
    assert_eq!(restored.members[0].assignment, Bytes::from_static(b"A"));
    assert_eq!(
        restored.members[0].metadata("range"),
        Bytes::from_static(b"meta-range")
    );
}
