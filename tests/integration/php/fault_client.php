<?php
// SPDX-License-Identifier: BSD-3-Clause
// PHP gearman-extension submitter for the fault tests (lib/GRLoad.pm):
//   php fault_client.php HOST PORT TIMEOUT_MS FUNC KEY:ATTEMPT...
// Submits each KEY:ATTEMPT in order as a background job of FUNC, with KEY
// as its unique, and prints "A KEY:ATTEMPT HANDLE" for each one
// acknowledged. Stops at the first failure (exit 1): the caller sends the
// rest again elsewhere.
$host = $argv[1];
$port = (int)$argv[2];
$timeout = (int)$argv[3];
$func = $argv[4];

$c = new GearmanClient();
$c->addServer($host, $port);
$c->setTimeout($timeout);
foreach (array_slice($argv, 5) as $payload) {
    $key = substr($payload, 0, strrpos($payload, ':'));
    $h = @$c->doBackground($func, $payload, $key);
    if ($c->returnCode() != GEARMAN_SUCCESS || $h === '' || $h === false) {
        exit(1);
    }
    echo "A $payload $h\n";
    flush();
}
exit(0);
