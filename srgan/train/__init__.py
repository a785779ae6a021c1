"""The paper's two-stage schedule, what a fork edits: the stages (`stages`), one step of each
(`steps`), the networks with their optimizers (`networks`) and the loop that runs them."""
