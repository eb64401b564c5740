"""Running a training job on this machine: its host folders, channels, processes (plain, MPI, built-in images), and
the reaper that kills them when the server dies. Imports nothing from the API (api/) or the store."""
