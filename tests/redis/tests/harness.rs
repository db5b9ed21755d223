//! The harness itself against the real redis-server: starts, commands, a crash and a restart,
//! a cluster, and arguments passed through.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, TcpStream};
use switchboard_test_redis::{RedisCluster, RedisServer};

#[test]
fn standalone_server_answers_ping() {
    let server = RedisServer::start();
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port()));
}

#[test]
fn set_then_get_returns_the_value() {
    let server = RedisServer::start();
    assert_eq!(server.cli(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(server.cli(&["GET", "greeting"]), "hello world");
}

#[test]
fn killed_server_refuses_connections_and_restarts_empty() {
    let mut server = RedisServer::start();
    assert_eq!(server.cli(&["SET", "k", "v"]), "OK");

    server.kill();
    let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, server.port())).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");

    server.restart();
    assert_eq!(server.cli(&["PING"]), "PONG");
    assert_eq!(server.cli(&["DBSIZE"]), "0");
    assert_eq!(server.cli(&["GET", "k"]), "");
}

#[test]
fn cluster_of_three_is_ok_and_follows_redirects() {
    let cluster = RedisCluster::start(3);
    assert_eq!(cluster.nodes().len(), 3);
    let urls = cluster.urls();
    for (node, url) in cluster.nodes().iter().zip(&urls) {
        assert_eq!(*url, node.url());
        assert!(node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
    }
    assert!(cluster.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));

    assert_eq!(cluster.cli(&["SET", "{a}x", "1"]), "OK");
    assert_eq!(cluster.cli(&["GET", "{a}x"]), "1");
    // The key's slot is served by one node only, so at least one other node redirects: the
    // client went through a MOVED reply unless the first node happens to own it.
    let owners = cluster.nodes().iter().filter(|node| node.cli(&["GET", "{a}x"]) == "1").count();
    assert_eq!(owners, 1, "exactly one node serves the key's slot");
}

#[test]
fn extra_arguments_reach_the_server() {
    let server = RedisServer::start_with(&["--requirepass", "pw"]);
    let refused = server.cli(&["PING"]);
    assert!(refused.contains("NOAUTH"), "{refused}");
    assert_eq!(server.cli(&["--no-auth-warning", "-a", "pw", "PING"]), "PONG");
}

#[test]
#[should_panic(expected = "exited before it was ready")]
fn a_server_that_cannot_start_fails_with_its_output() {
    RedisServer::start_with(&["--no-such-directive", "x"]);
}
