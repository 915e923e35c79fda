"""`hand_over`: a plain `send`, checkpoint included (see its docstring for the measurement)."""

import trio
import trio.testing

from gateway_trio.runtime.handoff import hand_over


async def test_room_still_checkpoints_and_a_full_channel_waits():
    send, receive = trio.open_memory_channel[int](1)
    with trio.testing.assert_checkpoints():
        await hand_over(send, 1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(hand_over, send, 2)
        await trio.testing.wait_all_tasks_blocked()
        assert receive.receive_nowait() == 1  # the second was held back: backpressure
        assert await receive.receive() == 2
