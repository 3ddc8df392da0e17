//! `--help` of `tern pub` and `tern sub`, laid out as mosquitto_pub's and mosquitto_sub's
//! so that what people know from those carries over. Only options that work are listed.

/// The usage lines of `tern pub`.
pub(crate) const PUB_USAGE: &str = "\
tern pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}
                {-f file | -l | -n | -m message | -s}
                [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                [-i id] [-I id_prefix]
                [-d] [--quiet] [--json]
                [-V protocol-version]
                [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file] [--key file]
                  [--insecure] [--tls-alpn protocol] [--tls-version version]]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [-D command identifier value]
       tern pub --help";

/// `tern pub --help`.
pub(crate) const PUB: &str = "\
tern pub is a simple MQTT client that will publish a message on a single topic and exit.

Usage: tern pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}
                {-f file | -l | -n | -m message | -s}
                [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                [-i id] [-I id_prefix]
                [-d] [--quiet] [--json]
                [-V protocol-version]
                [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file] [--key file]
                  [--insecure] [--tls-alpn protocol] [--tls-version version]]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [-D command identifier value]
       tern pub --help

 -c : disable clean session/enable persistent client mode
      When this argument is used, the broker will be instructed not to clean existing sessions
      for the same client id when the client connects, and sessions will never expire when the
      client disconnects. MQTT v5 clients can change their session expiry interval with the -x
      argument.
 -d : enable debug messages (on stderr).
 -D : define MQTT v5 properties: -D command identifier value, where command is connect,
      publish or will, and a user-property takes a name and a value:
        -D publish user-property name value    -D publish content-type text/plain
        -D publish correlation-data DATA       -D publish response-topic TOPIC
        -D publish message-expiry-interval S   -D publish payload-format-indicator 0|1
        -D connect session-expiry-interval S   -D connect receive-maximum N
        -D connect maximum-packet-size N       -D connect topic-alias-maximum N
        -D connect request-problem-information 0|1
        -D connect request-response-information 0|1
        -D connect user-property name value    -D will will-delay-interval S (and the
      publish properties for the will). -D selects MQTT v5 unless -V is given.
 -f : send the contents of a file as the message.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to tern- followed by 16 random hex digits.
 -I : define the client id as id_prefix appended with the process id. Useful for when the
      broker is using the clientid_prefixes option.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -n : send a null (zero length) message.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -q : quality of service level to use for all messages. Defaults to 0.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 -t : mqtt topic to publish to.
 -u : provide a username
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -x : Set the session-expiry-interval property on the CONNECT packet. Applies to MQTT v5
      clients only. Set to 0-4294967294 to specify the session will expire in that many
      seconds after the client disconnects, or use -1, 4294967295, or ∞ for a session
      that does not expire. Defaults to -1 if -c is also given, or 0 if -c not given.
 --help : display this message.
 --json : print one JSON object per message published, with the broker's reason code.
 --quiet : don't print error messages.
 --repeat : if publish mode is -f, -m, -n or -s, then repeat the publish N times.
 --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
 --will-payload : payload for the client Will, which is sent by the broker in case of
                  unexpected disconnection. If not given and will-topic is set, a zero
                  length message will be sent.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.
 --cafile : path to a file containing trusted CA certificates (PEM) to enable encrypted
            communication.
 --capath : path to a directory containing trusted CA certificates (*.pem, *.crt) to enable
            encrypted communication.
 --cert : client certificate for authentication, if required by server.
 --key : client private key for authentication, if required by server.
 --tls-use-os-certs : trust the Mozilla root certificates built into tern (the system's
                      store is not read) to enable encrypted communication.
 --insecure : do not check that the server certificate hostname matches the remote
              hostname. Using this option means that you cannot be sure that the
              remote host is the server you wish to connect to and so is insecure.
 --tls-alpn : TLS application layer protocol negotiation (ALPN) protocol to offer.
 --tls-version : TLS protocol version, tlsv1.3 or tlsv1.2. Defaults to either.

Exit status: 0 on success; the CONNACK reason code when the broker refuses the connection;
1 for any other error.
";

/// The usage lines of `tern sub`.
pub(crate) const SUB_USAGE: &str = "\
tern sub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                [-F format | --json] [--pretty]
                [-W timeout_secs]
                [-i id] [-I id_prefix]
                [-d] [-N] [--quiet] [-v]
                [-V protocol-version]
                [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file] [--key file]
                  [--insecure] [--tls-alpn protocol] [--tls-version version]]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [-D command identifier value]
       tern sub --help";

/// `tern sub --help`.
pub(crate) const SUB: &str = "\
tern sub is a simple MQTT client that will subscribe to a set of topics and print all messages it receives.

Usage: tern sub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                [-F format | --json] [--pretty]
                [-W timeout_secs]
                [-i id] [-I id_prefix]
                [-d] [-N] [--quiet] [-v]
                [-V protocol-version]
                [{--cafile file | --capath dir | --tls-use-os-certs} [--cert file] [--key file]
                  [--insecure] [--tls-alpn protocol] [--tls-version version]]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [-D command identifier value]
       tern sub --help

 -c : disable clean session/enable persistent client mode
      When this argument is used, the broker will be instructed not to clean existing sessions
      for the same client id when the client connects, and sessions will never expire when the
      client disconnects. MQTT v5 clients can change their session expiry interval with the -x
      argument. Messages the broker queued for the session while tern sub was away are
      not printed yet: tern-client drops messages that arrive before their subscription.
 -C : disconnect and exit after receiving the 'msg_count' messages.
 -d : enable debug messages (on stderr).
 -D : define MQTT v5 properties: -D command identifier value, where command is connect or
      will (see tern pub --help for the names). -D selects MQTT v5 unless -V is given.
 -E : Exit once all subscriptions have been acknowledged by the broker.
 -F : output format, see below.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to tern- followed by 16 random hex digits.
 -I : define the client id as id_prefix appended with the process id. Useful for when the
      broker is using the clientid_prefixes option.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
 -N : do not add an end of line character when printing the payload.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -q : quality of service level to use for the subscription. Defaults to 0.
 -R : do not print stale messages (those with retain set).
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -u : provide a username
 -U : unsubscribe from a topic. May be repeated.
 -v : print published messages verbosely.
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
      Exits with status 27 when it runs out.
 -x : Set the session-expiry-interval property on the CONNECT packet. Applies to MQTT v5
      clients only. Set to 0-4294967294 to specify the session will expire in that many
      seconds after the client disconnects, or use -1, 4294967295, or ∞ for a session
      that does not expire. Defaults to -1 if -c is also given, or 0 if -c not given.
 --help : display this message.
 --json : print each message as one JSON object (as -F %j, with retain as true/false and a
          payload that is not UTF-8 as payload_base64).
 --pretty : print formatted output rather than minimised output when using the
            JSON output format option.
 --quiet : don't print error messages.
 --random-filter : only print a percentage of received messages. Set to 100 to have all
                   messages printed, 50.0 to have half of the messages received on average
                   printed, and so on.
 --retain-as-published : keep the retain flag of messages as published (MQTT v5).
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
 --remove-retained : send a message to the server to clear any received retained messages
                     Use -T to filter out messages you do not want to be cleared.
 --will-payload : payload for the client Will, which is sent by the broker in case of
                  unexpected disconnection. If not given and will-topic is set, a zero
                  length message will be sent.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.
 --cafile : path to a file containing trusted CA certificates (PEM) to enable encrypted
            communication.
 --capath : path to a directory containing trusted CA certificates (*.pem, *.crt) to enable
            encrypted communication.
 --cert : client certificate for authentication, if required by server.
 --key : client private key for authentication, if required by server.
 --tls-use-os-certs : trust the Mozilla root certificates built into tern (the system's
                      store is not read) to enable encrypted communication.
 --insecure : do not check that the server certificate hostname matches the remote
              hostname. Using this option means that you cannot be sure that the
              remote host is the server you wish to connect to and so is insecure.
 --tls-alpn : TLS application layer protocol negotiation (ALPN) protocol to offer.
 --tls-version : TLS protocol version, tlsv1.3 or tlsv1.2. Defaults to either.

Output format (-F), as mosquitto_sub's:
 %% a literal %            %t topic                  %p payload
 %x payload in hex         %X payload in upper hex   %l payload length
 %q QoS                    %r retained flag          %I ISO-8601 local time
 %U Unix time.nanoseconds  %j JSON of the message    %J JSON, payload as JSON
 %m message id (the packet identifier; 0 for QoS 0)
 MQTT v5 properties: %A topic alias, %C content type, %D correlation data,
 %E message expiry interval, %F payload format indicator, %P user properties (name:value),
 %R response topic, %S subscription identifier.
 Flags and widths: %-10t (left aligned), %010l (zero padded), %10.5t (width.maximum).
 @X is strftime's %X (@Y-@m-@d), @N nanoseconds, @@ a literal @.
 Escapes: \\\\ \\0 \\a \\e \\n \\r \\t \\v.

Exit status: 0 on success (-C count reached, -E, Ctrl-C); 27 when -W runs out; the CONNACK
reason code when the broker refuses the connection; 1 for any other error.
";
