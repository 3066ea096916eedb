// SPDX-License-Identifier: LGPL-2.1-or-later
// libdirty-glib from GJS through introspection, TAP, against the real
// daemon that with-daemon.py started (its socket in $DIRTY_ARBITER_SOCKET,
// the default of Dirty.Client): execute, sync and async on a
// GLib.MainLoop; a stream chunk by chunk, sync and async, and as a
// Gio.InputStream; raw bytes both ways; and errors as GLib.Error in the
// DirtyError domain with the right code.
imports.gi.versions.Dirty = '1';
imports.gi.versions.Json = '1.0';
const {Dirty, Gio, GLib, Json} = imports.gi;
const System = imports.system;

const ECHO = 'echo:DirtyEchoApp';
const MARKOV = 'markov:DirtyMarkovApp';
const tests = [];

function assert(condition, what) {
    if (!condition)
        throw new Error(`assertion failed: ${what}`);
}

function numbers(...values) {
    const args = new Json.Array();
    values.forEach(v => args.add_int_element(v));
    return args;
}

function markovKwargs(words, seed) {
    const kwargs = new Json.Object();
    kwargs.set_int_member('words', words);
    kwargs.set_int_member('seed', seed);
    return kwargs;
}

// Calls start(done) on a fresh main loop; done(value) ends the loop.
function runOnLoop(start) {
    const loop = new GLib.MainLoop(null, false);
    let result, finished = false;
    start(value => {
        result = value;
        finished = true;
        loop.quit();
    });
    const timeout = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 30, () => {
        loop.quit();
        return GLib.SOURCE_REMOVE;
    });
    loop.run();
    if (finished)
        GLib.source_remove(timeout);
    assert(finished, 'the main loop timed out');
    return result;
}

// call() must throw a GLib.Error in the DirtyError domain with code.
function expectError(code, call) {
    try {
        call();
    } catch (error) {
        assert(error instanceof GLib.Error, `a GLib.Error, not ${error}`);
        assert(error.domain === Dirty.error_quark(), `domain ${GLib.quark_to_string(error.domain)}`);
        assert(GLib.quark_to_string(error.domain) === 'DirtyError', 'the DirtyError quark');
        assert(error.matches(Dirty.Error, code), `code ${error.code}, expected ${code}: ${error.message}`);
        return error;
    }
    throw new Error(`no error, expected code ${code}`);
}

function readAllChunks(stream) {
    const tokens = [];
    for (let chunk; (chunk = stream.next_chunk_sync(null)) !== null;)
        tokens.push(chunk.get_string());
    return tokens;
}

// Decodes blocks only once joined: a UTF-8 character may span two reads.
function decodeBlocks(blocks) {
    const all = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
    blocks.reduce((offset, b) => {
        all.set(b, offset);
        return offset + b.length;
    }, 0);
    return new TextDecoder().decode(all);
}

tests.push(function executeSync(client) {
    const result = client.execute_sync(ECHO, 'add', numbers(20, 22), null, null);
    assert(result.get_int() === 42, `20 + 22 = ${result.get_value()}`);
});

tests.push(function executeAsyncOnMainLoop(client) {
    const result = runOnLoop(done => {
        client.execute(ECHO, 'add', numbers(40, 2), null, null,
            (source, res) => done(source.execute_finish(res)));
    });
    assert(result.get_int() === 42, `40 + 2 = ${result.get_value()}`);
});

tests.push(function streamChunkByChunk(client) {
    const tokens = readAllChunks(client.stream_sync(MARKOV, 'generate', null, markovKwargs(30, 7), null));
    assert(tokens.join('').trim().split(/\s+/).length === 30, `30 words: ${tokens}`);
    const again = readAllChunks(client.stream_sync(MARKOV, 'generate', null, markovKwargs(30, 7), null));
    assert(again.join('|') === tokens.join('|'), 'the same seed, the same tokens');
});

tests.push(function streamChunkByChunkAsync(client) {
    const expected = readAllChunks(client.stream_sync(MARKOV, 'generate', null, markovKwargs(20, 3), null));
    const tokens = runOnLoop(done => {
        const got = [];
        const onChunk = (stream, res) => {
            let chunk;
            try {
                chunk = stream.next_chunk_finish(res);
            } catch (error) {
                done(error);
                return;
            }
            if (chunk === null) {
                done(got);
                return;
            }
            got.push(chunk.get_string());
            stream.next_chunk(null, onChunk);
        };
        client.stream(MARKOV, 'generate', null, markovKwargs(20, 3), null,
            (source, res) => source.stream_finish(res).next_chunk(null, onChunk));
    });
    assert(Array.isArray(tokens) && tokens.join('|') === expected.join('|'), `tokens ${tokens}`);
});

tests.push(function streamAsInputStream(client) {
    const expected = readAllChunks(client.stream_sync(MARKOV, 'generate', null, markovKwargs(40, 11), null)).join('');
    const stream = client.stream_sync(MARKOV, 'generate', null, markovKwargs(40, 11), null);
    assert(stream instanceof Gio.InputStream, 'a Gio.InputStream');
    const blocks = [];
    for (let block; (block = stream.read_bytes(7, null)).get_size() > 0;)   // chunks span reads
        blocks.push(block.toArray());
    stream.close(null);
    const text = decodeBlocks(blocks);
    assert(text === expected, `"${text}" is "${expected}"`);
});

tests.push(function inputStreamReadBytesAsync(client) {
    const expected = readAllChunks(client.stream_sync(MARKOV, 'generate', null, markovKwargs(25, 5), null)).join('');
    const stream = client.stream_sync(MARKOV, 'generate', null, markovKwargs(25, 5), null);
    const text = runOnLoop(done => {
        const blocks = [];
        const onRead = (source, res) => {
            const block = source.read_bytes_finish(res);
            if (block.get_size() === 0) {
                done(decodeBlocks(blocks));
                return;
            }
            blocks.push(block.toArray());
            source.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, null, onRead);
        };
        stream.read_bytes_async(4096, GLib.PRIORITY_DEFAULT, null, onRead);
    });
    assert(text === expected, `"${text}" is "${expected}"`);
});

tests.push(function bytesBothWays(client) {
    const payload = new Uint8Array(1024).map((_, i) => i & 0xff);
    const request = Dirty.Request.new(ECHO, 'echo_bytes');
    request.add_bytes(new GLib.Bytes(payload));
    const back = client.send_sync(request, null).get_bytes().toArray();
    assert(back.length === payload.length && back.every((b, i) => b === payload[i]), 'the same bytes');
});

tests.push(function streamOfBytes(client) {
    const kwargs = new Json.Object();
    kwargs.set_string_member('kind', 'bytes');
    kwargs.set_int_member('n', 3);
    kwargs.set_int_member('size', 5);
    const stream = client.stream_sync('streamapp:DirtyStreamTestApp', 'count', null, kwargs, null);
    const chunks = [];
    for (let chunk; (chunk = stream.next_chunk_sync(null)) !== null;)
        chunks.push(Array.from(stream.lookup_bytes(chunk).toArray()).join());
    assert(chunks.join('|') === '0,0,0,0,0|1,1,1,1,1|2,2,2,2,2', `chunks ${chunks.join('|')}`);
});

tests.push(function errorTimeout(client) {
    const request = Dirty.Request.new('slow:DirtySlowApp', 'sleep');
    request.add_arg(Json.Node.alloc().init_int(10));
    request.set_timeout(200);
    expectError(Dirty.Error.TIMEOUT, () => client.send_sync(request, null));
});

tests.push(function errorAppNotFound(client) {
    const error = expectError(Dirty.Error.APP_NOT_FOUND,
        () => client.execute_sync('nosuch:App', 'add', numbers(1), null, null));
    assert(error.message.includes('nosuch:App'), error.message);
});

tests.push(function errorAppNotFoundAsync(client) {
    const call = runOnLoop(done => {
        client.execute('nosuch:App', 'add', null, null, null,
            (source, res) => done(() => source.execute_finish(res)));
    });
    expectError(Dirty.Error.APP_NOT_FOUND, call);
});

tests.push(function errorApp(client) {
    const kwargs = new Json.Object();
    kwargs.set_string_member('message', 'no such file');
    const error = expectError(Dirty.Error.APP,
        () => client.execute_sync(ECHO, 'fail', null, kwargs, null));
    assert(error.message.includes('no such file'), error.message);
    // GJS hands the GError itself back: its extended fields are there.
    assert(Dirty.error_get_app(error) === ECHO, `app ${Dirty.error_get_app(error)}`);
    assert(Dirty.error_get_action(error) === 'fail', `action ${Dirty.error_get_action(error)}`);
    assert((Dirty.error_get_detail(error) ?? '').includes('EchoError: no such file'),
        `detail ${Dirty.error_get_detail(error)}`);
    assert(Dirty.error_get_worker_pid(error) > 0, 'a worker pid');
});

tests.push(function errorMidStream(client) {
    const kwargs = new Json.Object();
    kwargs.set_int_member('n', 10);
    kwargs.set_int_member('error_after', 3);
    const stream = client.stream_sync('streamapp:DirtyStreamTestApp', 'count', null, kwargs, null);
    const received = [0, 1, 2].map(() => stream.next_chunk_sync(null).get_int());
    assert(received.join() === '0,1,2', `received ${received}`);
    expectError(Dirty.Error.APP, () => stream.next_chunk_sync(null));
});

const client = Dirty.Client.new_sync(null, null);
let failed = 0;
print(`1..${tests.length}`);
tests.forEach((test, i) => {
    try {
        test(client);
        print(`ok ${i + 1} - ${test.name}`);
    } catch (error) {   // any failure is this test's; the next ones still run
        failed++;
        print(`not ok ${i + 1} - ${test.name}`);
        printerr(`${test.name}: ${error}\n${error.stack ?? ''}`);
    }
});
System.exit(failed ? 1 : 0);
