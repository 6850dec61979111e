"""Run under ``mpiexec -n 2``: rank 1 raises while rank 0 waits in a barrier that rank 1 never reaches."""

import time

import lamina.distributed as dist


def main():
    dist.init_process_group("mpi")
    if dist.get_rank() == 1:
        time.sleep(0.2)
        raise ValueError("boom on purpose")
    dist.barrier()
    print("barrier passed", flush=True)


if __name__ == "__main__":
    main()
