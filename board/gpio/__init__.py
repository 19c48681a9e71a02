"""GPIO backends: one file each (RPi.GPIO, libgpiod, simulated) behind `GpioBackend`."""
