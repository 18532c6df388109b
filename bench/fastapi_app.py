"""The FastAPI original that taskpoold replaces, as the benchmark's peer.

Served by uvicorn (uvloop, httptools) from Debian's packages:
    python3 -m uvicorn --app-dir bench fastapi_app:app --port 9000 \
        --loop uvloop --http httptools --no-access-log [--workers 2]

/tasks      gathers a 1 s and a 2 s sleep             (the seed)
/run-tasks  answers with the 1 s one; 5 s and 3 s go on detached
/tasks-zero gathers two zero-length sleeps             (overhead)
/tasks-cpu  two ~50 ms CPU-bound jobs, gathered         (serialized by
            the event loop: that is the point of the comparison)
/cpu-one    one such job alone                          (single-job time)
"""
import asyncio
import time

from fastapi import FastAPI

app = FastAPI()

# Detached tasks must stay referenced until done, or they may be collected.
_background = set()


async def task(delay: float, result: str) -> str:
    await asyncio.sleep(delay)
    return result


def spin(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


async def cpu_task(seconds: float) -> str:
    spin(seconds)
    return "spun"


def detach(coro):
    t = asyncio.create_task(coro)
    _background.add(t)
    t.add_done_callback(_background.discard)
    return t


@app.get("/tasks")
async def tasks():
    results = await asyncio.gather(task(1, "Task 1 done"),
                                   task(2, "Task 2 done"))
    return {"results": results}


@app.get("/run-tasks")
async def run_tasks():
    first = asyncio.create_task(task(1, "First result"))
    detach(task(5, "Second result"))
    detach(task(3, "Third result"))
    return {"result": await first}


@app.get("/tasks-zero")
async def tasks_zero():
    results = await asyncio.gather(task(0, "Task 1 done"),
                                   task(0, "Task 2 done"))
    return {"results": results}


@app.get("/tasks-cpu")
async def tasks_cpu():
    results = await asyncio.gather(cpu_task(0.05), cpu_task(0.05))
    return {"results": results}


@app.get("/cpu-one")
async def cpu_one():
    return {"result": await cpu_task(0.05)}
